"""Driving the pure recovery policy: inputs in one at a time, steps out to the reactor.

The policy (:mod:`esc_orch.reconcile.recovery`) decides; this coordinator only serializes its
inputs (one lock: a trigger, a step's outcome and a tick never interleave), hands each issued
step to the :class:`StepExecutor` port (the reactor: it journals and executes the action, the
only caller of a VIM), feeds the outcome back, and passes notices and VM states to the
:class:`RecoveryReporter` port (events and opdata). It also adapts the monitor's findings:
:meth:`sink_request` and :meth:`sink_alive` are what a :class:`~esc_orch.monitor.ports.MonitorSink`
calls. :attr:`book` is the state to persist with the events it produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.ports import Clock
from esc_orch.reconcile.identity import UuidFactory
from esc_orch.reconcile.recovery import (
    AliveAgain,
    IssuedStep,
    RecoveryBook,
    RecoveryEffects,
    RecoveryInput,
    RecoveryNotice,
    RecoverySubject,
    StepOutcome,
    Tick,
    Trigger,
    TriggerCause,
    recover,
    resume,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    ok: bool
    failure: str | None = None  # the typed failure's sentence


class StepExecutor(Protocol):
    async def execute(self, step: IssuedStep) -> StepResult:
        """Journal and run ``step.action`` (the reactor); never raises for a VIM failure."""
        ...


class RecoveryReporter(Protocol):
    async def notice(self, notice: RecoveryNotice) -> None:
        """Emit the VM_RECOVERY_* event (render with ``recovery_event``)."""
        ...

    async def vm_state(self, vm_name: str, state: VmLifecycleState) -> None:
        """Show the VM's state in opdata (RECOVERING, ALIVE, ERROR)."""
        ...


class SubjectPort(Protocol):
    def subjects(self) -> Mapping[str, RecoverySubject]:
        """Every VM that may be recovered, by name (from the deployment records)."""
        ...


class RecoveryCoordinator:
    def __init__(
        self,
        *,
        subjects: SubjectPort,
        executor: StepExecutor,
        reporter: RecoveryReporter,
        clock: Clock,
        new_uuid: UuidFactory,
        book: RecoveryBook | None = None,
        persist: Callable[[RecoveryBook], Awaitable[None]] | None = None,
    ) -> None:
        """``persist``: called with the new book after the notices and VM states of an input
        and before its steps are handed over (the daemon writes the book with those events,
        so a step is durable before it runs; after a restart only a cut start or reboot is
        run again, see :meth:`resume`)."""
        self._subjects = subjects
        self._executor = executor
        self._reporter = reporter
        self._clock = clock
        self._new_uuid = new_uuid
        self.book = book or RecoveryBook()
        self._persist = persist
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: RecoveryInput) -> None:
        async with self._lock:
            before = self.book
            self.book, effects = recover(
                self.book, event, subjects=self._subjects.subjects(), new_uuid=self._new_uuid
            )
            await self._carry_out(before, effects)

    async def resume(self) -> None:
        """After a restart: the book resumed (:func:`~esc_orch.reconcile.recovery.resume`),
        persisted, and the cut steps it runs again handed over."""
        async with self._lock:
            before = self.book
            self.book, effects = resume(
                self.book, at=self._clock.now(), subjects=self._subjects.subjects(),
                new_uuid=self._new_uuid,
            )  # fmt: skip
            await self._carry_out(before, effects)

    async def _carry_out(self, before: RecoveryBook, effects: RecoveryEffects) -> None:
        for note in effects.notes:
            log.info("recovery: %s", note)
        for notice in effects.notices:
            await self._reporter.notice(notice)
        for name, state in effects.vm_states:
            await self._reporter.vm_state(name, state)
        if self._persist is not None and (
            self.book != before or effects.notices or effects.vm_states
        ):
            await self._persist(self.book)
        for step in effects.steps:
            task = asyncio.create_task(self._run(step))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, step: IssuedStep) -> None:
        try:
            result = await self._executor.execute(step)
        except Exception as exc:  # the port broke its promise: the step failed, say why
            log.exception("recovery step %s of %s", step.seq, step.vm_name)
            result = StepResult(ok=False, failure=f"{type(exc).__name__}: {exc}")
        await self.handle(
            StepOutcome(
                vm_name=step.vm_name, seq=step.seq, at=self._clock.now(), ok=result.ok,
                failure=result.failure,
            )
        )  # fmt: skip

    async def tick(self) -> None:
        await self.handle(Tick(at=self._clock.now()))

    async def manual(self, vm_name: str) -> None:
        """``recoveryVmAction DO``."""
        now = self._clock.now()
        await self.handle(Trigger(vm_name=vm_name, cause=TriggerCause.MANUAL, at=now))

    async def sink_request(self, request: RecoveryRequest) -> None:
        await self.handle(
            Trigger(
                vm_name=request.vm_name, cause=request.cause, at=request.at,
                not_before=request.not_before,
            )
        )  # fmt: skip

    async def sink_alive(self, vm_name: str) -> None:
        await self.handle(AliveAgain(vm_name=vm_name, at=self._clock.now()))

    async def settled(self) -> None:
        """Wait for the steps started so far (and those their outcomes start)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
