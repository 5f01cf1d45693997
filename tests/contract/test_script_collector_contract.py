"""The collector contract suite against script collectors of both kinds (real processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from esc_orch.monitor.collectors.protocol import Collector, CollectorContext
from esc_orch.monitor.collectors.registry import create_collector
from esc_orch.monitor.definitions import load_definitions
from esc_orch.monitor.types import MetricKind, Target
from esc_orch.testing.collector_contract import CollectorContract, CollectorHarness

# Answers by address: 127.0.0.1 is healthy (exit 0 / prints 90), anything else fails (1 / 10).
SUCCESS = """#!/bin/sh
[ "$ESC_TARGET_ADDRESS" = "127.0.0.1" ]
"""
THRESHOLD = """#!/bin/sh
if [ "$ESC_TARGET_ADDRESS" = "127.0.0.1" ]; then echo 90; else echo 10; fi
"""


class ScriptHarness(CollectorHarness):
    many = 20

    def __init__(self, root: Path, kind: MetricKind) -> None:
        super().__init__()
        script = root / "check.sh"
        script.write_text(SUCCESS if kind is MetricKind.SUCCESS_FAILURE else THRESHOLD)
        script.chmod(0o755)
        (root / "check.toml").write_text(
            f'name = "CHECK"\nkind = "{kind}"\nscript = "check.sh"\ntimeout = 5\n'
        )
        self.definitions = load_definitions(root)

    async def collector(self) -> Collector:
        return create_collector("CHECK", context=CollectorContext(), definitions=self.definitions)

    def reachable(self, key: str, index: int = 0) -> Target:
        return Target(key=key, vm_name=f"vm{index}", address="127.0.0.1")

    def unreachable(self, key: str) -> Target | None:
        return Target(key=key, vm_name="down", address="127.0.0.2")


class TestSuccessFailureScriptContract(CollectorContract):
    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[CollectorHarness]:
        h = ScriptHarness(tmp_path, MetricKind.SUCCESS_FAILURE)
        yield h
        await h.aclose()


class TestThresholdScriptContract(CollectorContract):
    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[CollectorHarness]:
        h = ScriptHarness(tmp_path, MetricKind.THRESHOLD)
        yield h
        await h.aclose()
