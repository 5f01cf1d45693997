"""ICMPPing cases that run ONLY inside a private network namespace (see test_icmp_contract.py).

Not collected by a normal run (no ``test_`` prefix); the outer test starts pytest on this file
under ``unshare --net``. The session fixture refuses to continue unless the namespace is
sealed (no route, no interface up but ``lo``), then puts the seed's VM address on ``lo``,
sends 192.168.99.0/24 to ``lo`` too (those packets are never answered: a real timeout) and
lets every group use unprivileged ICMP datagram sockets (``ping_group_range`` is per
namespace).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.monitor.collectors.icmp import IcmpCollector, IcmpMode, IcmpSocket
from esc_orch.monitor.collectors.protocol import Collector, CollectorContext
from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import Target
from esc_orch.testing.collector_contract import CollectorContract, CollectorHarness
from esc_orch.testing.netns import inside

if not inside():
    pytest.skip(
        "runs only inside the namespace made by test_icmp_contract.py", allow_module_level=True
    )

SEED = "192.168.23.62"
SILENT = "192.168.99.5"  # routed to lo, never answered
ALLOWED = AllowedNetworks.parse(["127.0.0.0/8", "192.168.23.0/24", "192.168.99.0/24"])


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10)


@pytest.fixture(scope="session", autouse=True)
def sealed_namespace() -> Iterator[None]:
    _ip("link", "set", "lo", "up")
    problems = isolation_problems()
    if problems:
        pytest.fail(f"not a sealed namespace, refusing to configure addresses: {problems}")
    Path("/proc/sys/net/ipv4/ping_group_range").write_text("0 2147483647\n")
    _ip("addr", "add", f"{SEED}/32", "dev", "lo")
    for i in range(1, 61):
        _ip("addr", "add", f"192.168.23.{100 + i}/32", "dev", "lo")
    _ip("route", "add", "192.168.99.0/24", "dev", "lo")
    yield


class NetnsHarness(CollectorHarness):
    def __init__(self, mode: IcmpMode) -> None:
        super().__init__()
        self.mode = mode

    async def collector(self) -> Collector:
        return IcmpCollector(
            context=CollectorContext(allowed=ALLOWED, settings={"mode": self.mode})
        )

    def reachable(self, key: str, index: int = 0) -> Target:
        return Target(key=key, vm_name=f"vm{index}", address=f"192.168.23.{101 + index % 60}")

    def unreachable(self, key: str) -> Target | None:
        return Target(key=key, vm_name="silent", address=SILENT, properties={"timeout": "0.3"})

    def refused(self, key: str) -> Target | None:
        return Target(key=key, vm_name="outside", address="10.1.2.3")


class TestRawSocketContract(CollectorContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[CollectorHarness]:
        h = NetnsHarness(IcmpMode.RAW)
        yield h
        await h.aclose()


class TestDatagramSocketContract(CollectorContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[CollectorHarness]:
        h = NetnsHarness(IcmpMode.DGRAM)
        yield h
        await h.aclose()


@pytest.mark.parametrize("mode", [IcmpMode.RAW, IcmpMode.DGRAM])
async def test_the_seed_address_answers_and_a_silent_one_times_out(mode: IcmpMode) -> None:
    sock = IcmpSocket(mode=mode)
    try:
        started = time.monotonic()
        got = await sock.ping([SEED, SILENT, "192.168.77.1"], probe_timeout=0.4)
        took = time.monotonic() - started
    finally:
        sock.close()
    assert sock.raw is (mode is IcmpMode.RAW)
    assert got == {SEED: 1}
    assert 0.35 < took < 5.0  # waits for the silent probe's timeout, and does not hang


async def test_two_raw_sockets_only_see_their_own_replies() -> None:
    a, b = IcmpSocket(mode=IcmpMode.RAW), IcmpSocket(mode=IcmpMode.RAW)
    try:
        got_a, got_b = await asyncio.gather(
            a.ping(["192.168.23.101"] * 3, probe_timeout=0.5),
            b.ping(["192.168.23.102"] * 2, probe_timeout=0.5),
        )
    finally:
        a.close()
        b.close()
    assert a.ident != b.ident
    assert got_a == {"192.168.23.101": 3} and got_b == {"192.168.23.102": 2}


async def test_a_removed_address_stops_answering() -> None:
    c = IcmpCollector(context=CollectorContext(allowed=ALLOWED))
    t = Target(key="k", vm_name="vm", address="192.168.23.160", properties={"timeout": "0.3"})
    try:
        before = await c.collect([t])
        _ip("addr", "del", "192.168.23.160/32", "dev", "lo")
        after = await c.collect([t])
    finally:
        await c.aclose()
    assert before["k"].value == 100 and after["k"].value == 0


async def test_count_gives_a_percentage() -> None:
    c = IcmpCollector(context=CollectorContext(allowed=ALLOWED))
    t = Target(key="k", vm_name="vm", address=SEED, properties={"count": "4", "timeout": "0.3"})
    try:
        got = await c.collect([t])
    finally:
        await c.aclose()
    assert got["k"].value == 100
