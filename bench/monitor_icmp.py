"""Bench: CPU of ICMPPing with 10,000 and 50,000 targets polled every 15 s.

Goal: <= 5 % of one core at 10,000 targets. Runs only inside a private network namespace
(it re-executes itself under ``unshare --net``): there ``10.77.0.0/16`` is made local on
``lo`` (one ``ip route add local`` — every address of it answers like 127.0.0.1), so no packet
can leave the machine. For each size it measures, over ``--polls`` polls (bounded):

* ``collector``: one :class:`IcmpCollector.collect` per poll, all targets in one batch;
* ``service``: the whole :class:`MonitorService` turn (due, collect, decision core, sink) with
  one ICMPPing KPI per VM, on a clock advanced 15 s per turn: first the 3 polls in which every
  VM turns alive at once (``svc boot``), then ``--polls`` polls of the steady state.

It prints CPU seconds (user + sys of this process) per poll, that CPU as a share of one core
at one poll per 15 s, wall time per poll and the answered share. The kernel's work answering
the echoes on ``lo`` is not ours and not counted (it would be the VMs' in production).

Run: .venv/bin/python bench/monitor_icmp.py [--sizes 10000,50000] [--polls 3]
(as root; a machine that cannot create a network namespace says why and exits 2).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.monitor.collectors.icmp import IcmpCollector, IcmpMode
from esc_orch.monitor.collectors.protocol import CollectorContext
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.ports import VmStatus
from esc_orch.monitor.rule_runner import RuleOutcome
from esc_orch.monitor.rules import parse_action
from esc_orch.monitor.service import MonitorService
from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import KpiSpec, MetricCond, MetricKind, Target, VmWatch
from esc_orch.testing.netns import INSIDE_MARKER, inside, netns_unavailable

PREFIX = ipaddress.ip_network("10.77.0.0/16")
PERIOD = 15.0


def addresses(n: int) -> list[str]:
    hosts = PREFIX.hosts()
    return [str(next(hosts)) for _ in range(n)]


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class CountingSink:
    def __init__(self) -> None:
        self.changes = self.alive = self.recoveries = 0

    async def kpi_changed(self, status: VmStatus) -> None:
        self.changes += 1

    async def vm_alive(self, vm_name: str, *, first: bool) -> None:
        self.alive += 1

    async def recovery_requested(self, request: RecoveryRequest) -> None:
        self.recoveries += 1

    async def rule_ran(self, outcome: RuleOutcome) -> None:
        return None


class Watches:
    def __init__(self, items: Sequence[VmWatch]) -> None:
        self.items = items

    def watches(self) -> Sequence[VmWatch]:
        return self.items


def _context(mode: IcmpMode) -> CollectorContext:
    return CollectorContext(allowed=AllowedNetworks((PREFIX,)), settings={"mode": mode})


async def bench_collector(n: int, polls: int, mode: IcmpMode) -> dict[str, float]:
    collector = IcmpCollector(context=_context(mode))
    targets = [Target(key=a, vm_name=a, address=a) for a in addresses(n)]
    await collector.collect(targets[:10])  # open the socket
    cpu0, wall0 = time.process_time(), time.perf_counter()
    answered = 0.0
    for _ in range(polls):
        got = await collector.collect(targets)
        answered += sum(1 for s in got.values() if s.value == 100) / n
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await collector.aclose()
    return {"cpu": cpu / polls, "wall": wall / polls, "answered": answered / polls}


async def bench_service(n: int, polls: int, mode: IcmpMode) -> dict[str, float]:
    rules = {
        "VM_ALIVE": tuple(parse_action(r) for r in ("ALWAYS log", "FALSE recover autohealing"))
    }
    watches = [
        VmWatch(
            vm_name=f"vm{i}", tenant="t", deployment=f"d{i}", group="g", connector_id="CSP-1",
            since=1_000_000.0, recovery_wait_time=60, rules=rules,
            kpis=(
                KpiSpec(
                    event_name="VM_ALIVE", collector_type="ICMPPing", kind=MetricKind.THRESHOLD,
                    metric_value=50, metric_cond=MetricCond.GT, occurrences_true=3,
                    occurrences_false=3, poll_seconds=PERIOD, nicid=0, address=a,
                ),
            ),
        )
        for i, a in enumerate(addresses(n))
    ]  # fmt: skip
    clock, sink = Clock(), CountingSink()
    service = MonitorService(
        watches=Watches(watches), sink=sink, clock=clock,
        collectors={"ICMPPing": IcmpCollector(context=_context(mode))},
    )  # fmt: skip
    out: dict[str, float] = {}
    # first the 3 polls in which every VM becomes alive (VM_ALIVE, rule actions for all at
    # once), then the steady state: what a daemon pays poll after poll
    for phase, count in (("boot", 3), ("steady", polls)):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(count):
            await service.run_once()
            clock.t += PERIOD
        await service.rules_settled()
        out[f"{phase}_cpu"] = (time.process_time() - cpu0) / count
        out[f"{phase}_wall"] = (time.perf_counter() - wall0) / count
    await service.stop()
    out["answered"] = sink.alive / n
    return out


def inner(sizes: list[int], polls: int, mode: IcmpMode) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        print(f"refusing: not a sealed network namespace: {problems}", file=sys.stderr)
        return 3
    subprocess.run(
        ["ip", "route", "add", "local", str(PREFIX), "dev", "lo"], check=True, timeout=10
    )
    print(f"ICMPPing, one {mode} socket, polls every {PERIOD:g} s, {polls} polls per size")
    print(
        f"{'targets':>8} {'what':>10} {'cpu s/poll':>11} {'% of a core':>12} "
        f"{'wall s/poll':>12} {'ok':>6}"
    )
    for n in sizes:
        c = asyncio.run(bench_collector(n, polls, mode))
        rows = [("collector", c["cpu"], c["wall"], c["answered"])]
        r = asyncio.run(bench_service(n, polls, mode))
        rows.append(("svc boot", r["boot_cpu"], r["boot_wall"], r["answered"]))
        rows.append(("svc steady", r["steady_cpu"], r["steady_wall"], r["answered"]))
        for name, cpu, wall, ok in rows:
            print(
                f"{n:>8} {name:>10} {cpu:>11.3f} {100 * cpu / PERIOD:>11.2f}% {wall:>12.3f} "
                f"{ok:>6.3f}"
            )
    print("ok: for 'collector' the share of targets answered per poll; for the service the "
          "share of VMs that became alive. 'svc boot': the 3 polls in which every VM turns alive "
          "at once (VM_ALIVE and rule actions for all); 'svc steady': the polls after")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--mode", choices=[m.value for m in IcmpMode], default="auto")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(n > 60000 for n in sizes) or not 1 <= args.polls <= 10:
        parser.error("at most 60000 targets and 1..10 polls (the run must stay bounded)")
    if inside():
        return inner(sizes, args.polls, IcmpMode(args.mode))
    reason = netns_unavailable()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    return subprocess.run(
        ["unshare", "--net", sys.executable, *sys.argv],
        env={**os.environ, INSIDE_MARKER: "1"}, check=False, timeout=300,
    ).returncode  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
