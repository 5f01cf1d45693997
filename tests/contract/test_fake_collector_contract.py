"""The collector contract suite against the in-memory fake (its executable specification)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esc_orch.monitor.collectors.protocol import Collector
from esc_orch.monitor.types import Target
from esc_orch.testing.collector_contract import CollectorContract, CollectorHarness
from esc_orch.testing.fake_collector import FakeCollector


class FakeHarness(CollectorHarness):
    def __init__(self) -> None:
        super().__init__()

    async def collector(self) -> Collector:
        fake = FakeCollector()
        for i in range(self.many):
            fake.set(f"10.0.0.{i}", 100)
        fake.set("10.9.9.9", error="refused")
        return fake

    def reachable(self, key: str, index: int = 0) -> Target:
        return Target(key=key, vm_name=f"vm{index}", address=f"10.0.0.{index}")

    def unreachable(self, key: str) -> Target | None:
        return Target(key=key, vm_name="down", address="10.0.1.1")

    def refused(self, key: str) -> Target | None:
        return Target(key=key, vm_name="refused", address="10.9.9.9")


class TestFakeCollectorContract(CollectorContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[CollectorHarness]:
        h = FakeHarness()
        yield h
        await h.aclose()
