"""The recovery coordinator: one input at a time, steps to the executor, outcomes fed back."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Mapping

import pytest

from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.monitor.collectors.icmp import IcmpCollector
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.recovery_driver import RecoveryCoordinator, StepResult
from esc_orch.monitor.types import Target
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.recovery import (
    IssuedStep,
    RecoveryAction,
    RecoveryBook,
    RecoveryNotice,
    RecoverySubject,
    Trigger,
    TriggerCause,
    recover,
)
from esc_orch.vim.types import VmSpec

VM = VmIdentity(
    deployment="dep", group="g", index=0, uuid="46e607a8-b797-4056-96f3-42a90a63b555",
    vmid="6b0e7179-fd5e-487e-9570-e7ba98cce0ec",
)  # fmt: skip
SPEC = VmSpec(name=VM.name, vcpus=1, memory_mb=1, disk_mb=1, image="i")


class Clock:
    t = 100.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Port:
    def __init__(self, *, fail: Exception | str | None = None) -> None:
        self.fail = fail
        self.steps: list[IssuedStep] = []
        self.notices: list[RecoveryNotice] = []
        self.states: list[VmLifecycleState] = []

    def subjects(self) -> Mapping[str, RecoverySubject]:
        return {VM.name: RecoverySubject(vm=VM, connector_id="CSP-1", vim_project=None,
                                         spec=SPEC, action=RecoveryAction.REBOOT_ONLY,
                                         max_retries=1, bootup_time=10)}  # fmt: skip

    async def execute(self, step: IssuedStep) -> StepResult:
        self.steps.append(step)
        await asyncio.sleep(0)
        if isinstance(self.fail, Exception):
            raise self.fail
        return StepResult(ok=self.fail is None, failure=self.fail)

    async def notice(self, notice: RecoveryNotice) -> None:
        self.notices.append(notice)

    async def vm_state(self, vm_name: str, state: VmLifecycleState) -> None:
        self.states.append(state)


def coordinator(port: Port, clock: Clock) -> RecoveryCoordinator:
    ids = (f"00000000-0000-0000-0000-{i:012d}" for i in itertools.count(1))
    return RecoveryCoordinator(subjects=port, executor=port, reporter=port, clock=clock,
                               new_uuid=lambda: next(ids))  # fmt: skip


def events(port: Port) -> list[str]:
    return [
        f"{n.event.removeprefix('VM_RECOVERY_')}:{'ok' if n.ok else 'FAIL'}" for n in port.notices
    ]


async def test_a_request_waits_then_reboots_and_completes_when_alive() -> None:
    port, clock = Port(), Clock()
    c = coordinator(port, clock)
    await c.sink_request(RecoveryRequest(vm_name=VM.name, cause=TriggerCause.KPI_FALSE,
                                         at=100, not_before=160))  # fmt: skip
    await c.tick()
    assert port.steps == [] and events(port) == []
    clock.t = 160
    await c.tick()
    await c.settled()
    assert len(port.steps) == 1 and events(port) == ["INIT:ok", "REBOOT:ok"]
    await c.sink_alive(VM.name)
    assert events(port)[-1] == "COMPLETE:ok"
    assert port.states == [VmLifecycleState.RECOVERING, VmLifecycleState.ALIVE]


async def test_a_restart_runs_the_cut_reboot_again_after_persisting_the_book() -> None:
    """The book resumed at start-up: the reboot the crash cut (in the book, never reported)
    is run again, once, after the book naming it is durable; no second INIT."""
    port, clock = Port(), Clock()
    trigger = Trigger(vm_name=VM.name, cause=TriggerCause.MANUAL, at=clock.t)
    book, cut = recover(RecoveryBook(), trigger, subjects=port.subjects(), new_uuid=lambda: "x")
    assert len(cut.steps) == 1  # INIT and the step in the book; then the daemon died
    order: list[str] = []

    async def persist(b: object) -> None:
        order.append(f"persist:{len(port.steps)}")

    ids = (f"00000000-0000-0000-0000-{i:012d}" for i in itertools.count(1))
    c = RecoveryCoordinator(subjects=port, executor=port, reporter=port, clock=clock,
                            new_uuid=lambda: next(ids), book=book, persist=persist)  # fmt: skip
    await c.resume()
    await c.settled()
    assert order[0] == "persist:0" and len(port.steps) == 1
    assert port.steps[0].seq != book.runs[VM.name].seq
    assert events(port) == ["REBOOT:ok"]
    await c.sink_alive(VM.name)
    assert events(port) == ["REBOOT:ok", "COMPLETE:ok"]


async def test_an_executor_that_raises_is_a_failed_step_with_the_reason() -> None:
    port, clock = Port(fail=RuntimeError("journal full")), Clock()
    c = coordinator(port, clock)
    await c.manual(VM.name)
    await c.settled()
    assert events(port) == ["INIT:ok", "REBOOT:FAIL"]
    assert port.notices[1].failure == "RuntimeError: journal full"
    clock.t += 10
    await c.tick()
    assert events(port)[-1] == "COMPLETE:FAIL"
    assert port.notices[-1].failure == "RuntimeError: journal full; not alive within 10 s"


async def test_simultaneous_triggers_give_one_recovery() -> None:
    port, clock = Port(fail="host down"), Clock()
    c = coordinator(port, clock)
    req = RecoveryRequest(vm_name=VM.name, cause=TriggerCause.HOST_DOWN, at=100, not_before=100)
    await asyncio.gather(c.sink_request(req), c.manual(VM.name), c.sink_request(req))
    await c.settled()
    assert len(port.steps) == 1 and events(port) == ["INIT:ok", "REBOOT:FAIL"]


async def test_icmp_without_any_socket_gives_error_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket, "socket", refuse)
    collector = IcmpCollector()
    got = await collector.collect([Target(key="k", vm_name="v", address="127.0.0.1")])
    assert got["k"].value is None and "cannot open an ICMP socket" in (got["k"].error or "")
    await collector.aclose()
