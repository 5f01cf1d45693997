"""The collector contract suite against ICMPPing: real echo on one socket.

Here, on the machine's own network, only 127.0.0.0/8 is pinged (every 127.x address answers on
``lo``). The cases that need an address that does not answer, the seed's 192.168.23.x
addresses and the unprivileged datagram socket run in ``icmp_netns_cases.py``, inside a
private network namespace this test creates (``unshare --net``: no route out).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from esc_orch.monitor.collectors.icmp import IcmpCollector
from esc_orch.monitor.collectors.protocol import Collector, CollectorContext
from esc_orch.monitor.types import Target
from esc_orch.testing.collector_contract import CollectorContract, CollectorHarness
from esc_orch.testing.netns import INSIDE_MARKER, require_netns

CASES = Path(__file__).with_name("icmp_netns_cases.py")
REPO = Path(__file__).resolve().parents[2]


class LoopbackHarness(CollectorHarness):
    async def collector(self) -> Collector:
        return IcmpCollector(context=CollectorContext())

    def reachable(self, key: str, index: int = 0) -> Target:
        return Target(
            key=key, vm_name=f"vm{index}", address=f"127.0.{index // 250}.{index % 250 + 1}"
        )

    def refused(self, key: str) -> Target | None:
        return Target(key=key, vm_name="outside", address="10.1.2.3")  # never sent: refused


@pytest.mark.skipif(
    os.geteuid() != 0, reason="raw ICMP needs root (datagram runs in the namespace)"
)
class TestIcmpLoopbackContract(CollectorContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[CollectorHarness]:
        h = LoopbackHarness()
        yield h
        await h.aclose()


@pytest.mark.root
def test_icmp_contract_inside_a_private_network_namespace() -> None:
    require_netns()
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=--import-mode=importlib", str(CASES)],
        cwd=REPO, env={**os.environ, INSIDE_MARKER: "1"},
        check=False, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert " passed" in out and "skipped" not in out, out[-3000:]
