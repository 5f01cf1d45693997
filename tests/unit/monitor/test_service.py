"""The monitoring loop on a fake clock, with a fake collector and list-backed ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from esc_orch.monitor.collectors.vimview import VimViewSource
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.ports import VmStatus
from esc_orch.monitor.rule_runner import RuleOutcome, RuleRunner
from esc_orch.monitor.rules import parse_action
from esc_orch.monitor.scripts import ScriptOutcome
from esc_orch.monitor.service import MonitorService
from esc_orch.monitor.snapshot import snapshot_from_json, snapshot_to_json
from esc_orch.monitor.types import KpiSpec, MetricCond, MetricKind, VmWatch
from esc_orch.reconcile.recovery import TriggerCause
from esc_orch.testing.fake_collector import FakeCollector
from esc_orch.vim.errors import TemporaryVimError
from esc_orch.vim.types import PowerState, Storage, VmState

ADDR = "127.0.0.5"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Watches:
    def __init__(self, *watches: VmWatch) -> None:
        self.items = list(watches)

    def watches(self) -> Sequence[VmWatch]:
        return self.items


class Sink:
    def __init__(self) -> None:
        self.status: list[VmStatus] = []
        self.alive: list[tuple[str, bool]] = []
        self.recoveries: list[RecoveryRequest] = []
        self.rules: list[RuleOutcome] = []

    async def kpi_changed(self, status: VmStatus) -> None:
        self.status.append(status)

    async def vm_alive(self, vm_name: str, *, first: bool) -> None:
        self.alive.append((vm_name, first))

    async def recovery_requested(self, request: RecoveryRequest) -> None:
        self.recoveries.append(request)

    async def rule_ran(self, outcome: RuleOutcome) -> None:
        self.rules.append(outcome)


def seed_watch(*, since: float = 1000.0, bootup: float = 600, **kw: object) -> VmWatch:
    kpi = KpiSpec(
        event_name="VM_ALIVE", collector_type="FAKE", kind=MetricKind.THRESHOLD,
        metric_value=50, metric_cond=MetricCond.GT, occurrences_true=3, occurrences_false=3,
        poll_seconds=15, nicid=0, address=ADDR,
    )  # fmt: skip
    rules = ("ALWAYS log", "FALSE recover autohealing", "TRUE servicebooted.sh")
    return VmWatch(
        vm_name="vm0", tenant="demo", deployment="dep", group="Group1", connector_id="CSP-1",
        bootup_time=bootup, recovery_wait_time=60, since=since, kpis=(kpi,),
        rules={"VM_ALIVE": tuple(parse_action(r) for r in rules)}, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def turns(service: MonitorService, clock: Clock, n: int, step: float = 15) -> None:
    for _ in range(n):
        await service.run_once()
        await service.rules_settled()
        clock.t += step


def make(
    *watches: VmWatch, clock: Clock, fake: FakeCollector, **kw: object
) -> tuple[MonitorService, Sink]:
    sink = Sink()
    service = MonitorService(
        watches=Watches(*watches), sink=sink, collectors={"FAKE": fake}, clock=clock,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return service, sink


async def test_alive_then_failing_asks_for_recovery_after_the_window(tmp_path: Path) -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    service, sink = make(
        seed_watch(), clock=clock, fake=fake, rules=RuleRunner(scripts_dir=tmp_path)
    )
    await turns(service, clock, 3)
    assert sink.alive == [("vm0", True)]
    assert [(r.action_text, r.ok) for r in sink.rules] == [
        ("ALWAYS log", True), ("TRUE servicebooted.sh", False),
    ]  # fmt: skip
    missing = sink.rules[1].script
    assert missing is not None and missing.outcome is ScriptOutcome.MISSING
    fake.set(ADDR, 0)
    await turns(service, clock, 3)
    assert len(sink.recoveries) == 1
    req = sink.recoveries[0]
    assert (req.cause, req.at, req.not_before) == (TriggerCause.KPI_FALSE, 1075, 1135)
    last = sink.status[-1]
    assert last.kpis[0].condition is False and last.kpis[0].consecutive == 3
    assert last.kpis[0].last_value == 0 and last.kpis[0].last_poll_at == 1075
    assert len(fake.batches) == 6 and all(len(b) == 1 for b in fake.batches)


async def test_rule_scripts_get_the_event_facts(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    script = tmp_path / "servicebooted.sh"
    script.write_text(
        '#!/bin/sh\nprintf \'{"vm":"%s","edge":"%s","dep":"%s","value":"%s"}\' '
        f'"$ESC_VM_NAME" "$ESC_EDGE" "$ESC_DEPLOYMENT" "$ESC_KPI_VALUE" > {out}\necho done\n'
    )
    script.chmod(0o755)
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    service, sink = make(
        seed_watch(), clock=clock, fake=fake, rules=RuleRunner(scripts_dir=tmp_path)
    )
    await turns(service, clock, 3)
    assert json.loads(out.read_text()) == {
        "vm": "vm0",
        "edge": "TRUE",
        "dep": "dep",
        "value": "100",
    }
    ran = next(r for r in sink.rules if r.script is not None)
    assert ran.ok and ran.script is not None and ran.script.stdout == "done\n"


class DeadHost:
    async def list_vms(self) -> tuple[VmState, ...]:
        raise TemporaryVimError("connection refused")


class Host:
    def __init__(self, power: PowerState) -> None:
        self.power = power

    async def list_vms(self) -> tuple[VmState, ...]:
        return (
            VmState(
                name="vm0", power=self.power, host="CSP-1", storage=Storage.LOCAL, vim_id="1",
                vcpus=1, memory_mb=1, disk_mb=1, image="i",
            ),
        )  # fmt: skip


async def test_a_dead_host_is_acted_on_at_the_first_failed_check() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    observers: dict[str, object] = {"CSP-1": Host(PowerState.RUNNING)}
    vim = VimViewSource(observers=observers)  # type: ignore[arg-type]
    service, sink = make(seed_watch(), clock=clock, fake=fake, vim=vim, vim_interval=30)
    await turns(service, clock, 4)
    assert sink.alive == [("vm0", True)] and sink.recoveries == []
    observers["CSP-1"] = DeadHost()
    await turns(service, clock, 2)  # pings still answer; the next VIM check fails
    assert [(r.cause, r.not_before - r.at) for r in sink.recoveries] == [
        (TriggerCause.HOST_DOWN, 60)
    ]
    assert sink.status[-1].vim is not None and sink.status[-1].vim.value == "host-unreachable"


class SlowDeadHost:
    """A host whose check hangs until released, then fails (a dead host's retries)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def list_vms(self) -> tuple[VmState, ...]:
        self.calls += 1
        await self.release.wait()
        raise TemporaryVimError("connection refused")


async def test_a_slow_vim_check_does_not_hold_the_polls_up() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    observers: dict[str, object] = {"CSP-1": Host(PowerState.RUNNING)}
    vim = VimViewSource(observers=observers, check_timeout=3600)  # type: ignore[arg-type]
    service, sink = make(seed_watch(), clock=clock, fake=fake, vim=vim, vim_interval=30)
    await turns(service, clock, 4)
    assert sink.alive == [("vm0", True)]
    slow = SlowDeadHost()
    observers["CSP-1"] = slow
    polls = service.polls
    await turns(service, clock, 3)  # the check hangs: every turn returns, pings go on
    assert service.polls == polls + 3 and slow.calls == 1 and sink.recoveries == []
    slow.release.set()
    await asyncio.sleep(0)
    await turns(service, clock, 1)  # its answer is folded in at the next turn
    assert [r.cause for r in sink.recoveries] == [TriggerCause.HOST_DOWN]


async def test_a_vm_stopped_behind_our_back() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    host = Host(PowerState.RUNNING)
    vim = VimViewSource(observers={"CSP-1": host})
    service, sink = make(seed_watch(), clock=clock, fake=fake, vim=vim, vim_interval=15)
    await turns(service, clock, 3)
    host.power = PowerState.STOPPED
    await turns(service, clock, 1)
    assert [r.cause for r in sink.recoveries] == [TriggerCause.VM_STOPPED]


async def test_a_restart_with_the_snapshot_causes_no_recovery() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    booting = replace(seed_watch(), vm_name="vm1", since=1000)
    booting_kpi = replace(booting.kpis[0], address="127.0.0.6")
    booting = replace(booting, kpis=(booting_kpi,))
    service, sink = make(seed_watch(), booting, clock=clock, fake=fake)
    await turns(service, clock, 3)
    assert sink.alive == [("vm0", True)]
    saved = json.loads(json.dumps(snapshot_to_json(service.snapshot())))
    # the daemon is down for an hour: vm1's bootup_time ran out unwatched
    clock.t += 3600
    fake.set("127.0.0.6", 100)
    again, sink2 = make(
        seed_watch(), booting, clock=clock, fake=fake, snapshot=snapshot_from_json(saved)
    )
    await turns(again, clock, 3)
    assert sink2.recoveries == []
    assert sink2.alive == [("vm1", True)]  # vm0 was already alive: no second VM_ALIVE


async def test_a_restart_without_a_snapshot_gives_booting_vms_a_grace() -> None:
    clock, fake = Clock(t=5000), FakeCollector()
    service, sink = make(seed_watch(since=1000), clock=clock, fake=fake)
    await turns(service, clock, 4)  # 3 polls of grace (3 true + 1), all failing
    assert sink.recoveries == []
    await turns(service, clock, 1)
    assert [r.cause for r in sink.recoveries] == [TriggerCause.BOOTUP_EXPIRED]


async def test_bootup_time_expiry_without_polls_due() -> None:
    clock, fake = Clock(), FakeCollector()
    service, sink = make(seed_watch(bootup=20), clock=clock, fake=fake)
    await service.run_once()
    clock.t += 20
    await service.run_once()
    assert [r.cause for r in sink.recoveries] == [TriggerCause.BOOTUP_EXPIRED]


@pytest.mark.parametrize("change", [{"paused": True}, {"enabled": False}, {"kpi_enabled": False}])
async def test_paused_or_disabled_watches_are_not_polled(change: dict[str, object]) -> None:
    clock, fake = Clock(), FakeCollector()
    service, sink = make(replace(seed_watch(), **change), clock=clock, fake=fake)  # type: ignore[arg-type]
    await turns(service, clock, 3)
    assert fake.batches == [] and sink.status == [] and sink.recoveries == []


class Broken:
    type_name = "FAKE"
    kind = MetricKind.THRESHOLD

    async def collect(self, targets: object) -> dict[str, object]:
        raise RuntimeError("kaput")

    async def aclose(self) -> None:
        return None


async def test_a_broken_collector_gives_error_samples_and_the_loop_goes_on() -> None:
    clock = Clock()
    sink = Sink()
    service = MonitorService(
        watches=Watches(seed_watch()), sink=sink, collectors={"FAKE": Broken()},  # type: ignore[dict-item]
        clock=clock,
    )  # fmt: skip
    await turns(service, clock, 2)
    assert sink.status[-1].kpis[0].last_error == "collector FAKE failed: kaput"


async def test_an_unknown_collector_type_is_an_error_sample() -> None:
    clock = Clock()
    sink = Sink()
    service = MonitorService(watches=Watches(seed_watch()), sink=sink, collectors={}, clock=clock)
    await service.run_once()
    assert "no collector of type 'FAKE'" in (sink.status[-1].kpis[0].last_error or "")


async def test_run_sleeps_until_the_next_poll_and_stops() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    sink = Sink()
    service = MonitorService(
        watches=Watches(seed_watch()), sink=sink, collectors={"FAKE": fake}, clock=clock,
        max_sleep=15,
    )  # fmt: skip

    class Stopper:
        async def vm_alive(self, vm_name: str, *, first: bool) -> None:
            await service.stop()

    sink.vm_alive = Stopper().vm_alive  # type: ignore[method-assign]
    await service.run()
    assert len(fake.batches) == 3 and clock.t == 1030 and fake.closed


async def test_vanished_vms_are_forgotten() -> None:
    clock, fake = Clock(), FakeCollector()
    watches = Watches(seed_watch())
    sink = Sink()
    service = MonitorService(watches=watches, sink=sink, collectors={"FAKE": fake}, clock=clock)
    await service.run_once()
    assert service.state("vm0") is not None
    watches.items = []
    assert await service.run_once() is None
    assert service.state("vm0") is None


async def test_counts_are_read_on_demand_and_changes_are_pushed() -> None:
    clock, fake = Clock(), FakeCollector()
    fake.set(ADDR, 100)
    w = seed_watch()
    service, sink = make(w, clock=clock, fake=fake)
    await turns(service, clock, 5)
    pushed = [(s.alive, s.kpis[0].condition) for s in sink.status]
    assert pushed == [(False, None), (True, True)]  # first sight, then alive: not every poll
    status = service.status(w)
    assert status is not None and status.monitoring
    kpi = status.kpis[0]
    assert (kpi.consecutive, kpi.last_value, kpi.last_poll_at) == (5, 100, 1060)
