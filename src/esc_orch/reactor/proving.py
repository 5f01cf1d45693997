"""The converger's side of proof before a second copy: decide, fence, wait, or give up.

A mixin of :class:`~esc_orch.reactor.converge.Converger` (kept apart so each module stays
small): :meth:`Proving._prove` turns the proof gate's decision
(:class:`~esc_orch.reactor.proofgate.ProofGate`) into what the run does next, with the record's
step showing a wait (``WaitForProof``, what it waits for and what unblocks it) and a fence
journaled as a step of its own (``FenceHost``: intent, agent call, outcome).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from esc_orch import failpoints
from esc_orch.fence.types import FenceProof
from esc_orch.model.actions import Action, FenceHost, MigrateVm, MigrationMode
from esc_orch.model.clock import Clock
from esc_orch.model.failure import Failure, NotAliveAfterMove, ProofMissing
from esc_orch.model.lifecycle import LifecycleOperation
from esc_orch.model.ports import Intent, Journal, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, StepInFlight
from esc_orch.model.vim import DiskCopyProgress, PowerState
from esc_orch.reactor.alive import AliveVerdicts
from esc_orch.reactor.proofgate import MoveProof, ProofGate
from esc_orch.reactor.status import DeploymentTarget, RunOutcome
from esc_orch.reconcile.identity import UuidFactory
from esc_orch.reconcile.observed import Observation
from esc_orch.reconcile.proof import FenceFirst, MayStart, ProofTimedOut, WaitForProof, explain
from esc_orch.vim.protocol import ProgressCallback

log = logging.getLogger(__name__)


class ProvingRun(Protocol):
    """What of a run the proof steps read (``converge._Run``)."""

    target: DeploymentTarget
    operation: LifecycleOperation
    proofs: dict[str, MoveProof]
    moved: dict[str, str]
    settle_since: dict[str, datetime]


def _where(target: DeploymentTarget, action: Action) -> dict[str, str]:
    return {
        "deployment": f"{target.tenant}/{target.name}",
        "vm": action.vm.name,
        "connector": action.connector_id,
    }


R = TypeVar("R", bound=ProvingRun)


class Proving(Generic[R]):
    """Proof steps of a run; the converger provides the record and failure ports."""

    _proof: ProofGate
    _alive: AliveVerdicts
    _alive_timeout: float
    _journal: Journal
    _clock: Clock
    _new_uuid: UuidFactory

    def _get(self, run: R) -> DeploymentRecord:
        raise NotImplementedError

    def _put(self, record: DeploymentRecord) -> DeploymentRecord:
        raise NotImplementedError

    async def _fail(
        self, run: R, failure: Failure, action: Action | None, *, code: int = 500
    ) -> RunOutcome:
        raise NotImplementedError

    async def _prove(self, run: R, action: MigrateVm) -> MayStart | RunOutcome | None:
        """Ask the proof rules whether ``action`` may start its VM on the target now.

        ``MayStart``: go on; ``None``: a fence was tried or the move waited, observe again;
        a failed outcome when the wait timed out (nothing was started).
        """
        name, source = action.vm.name, action.source_connector_id
        now = self._clock()
        state = run.proofs.setdefault(name, MoveProof(waiting_since=now))
        decision = self._proof.decide(action, state, now)
        where = _where(run.target, action) | {"source": source}
        match decision:
            case MayStart():
                log.info("%s may start: %s", name, decision.detail, extra=where)
                return decision
            case FenceFirst():
                await self._fence(run, action, decision, now)
                return None
            case WaitForProof():
                text = explain(decision, vm=name)
                step = StepInFlight(
                    step_id=f"wait-for-proof-{name}",
                    action="WaitForProof",
                    vm_name=name,
                    connector_id=source,
                    started=state.waiting_since,
                    detail=text,
                )
                self._put(replace(self._get(run), step=step))
                log.info("waiting for proof: %s", text, extra=where)
                await self._proof.wait(decision.recheck_at, now)
                return None
            case ProofTimedOut():
                failure = ProofMissing(
                    vm_name=name,
                    connector_id=source,
                    waited_s=int(decision.waited.total_seconds()),
                    explanation=explain(decision, vm=name),
                )
                return await self._fail(run, failure, action)
            case _:  # StopSourceFirst: the source answers, which a re-observation shows
                return None

    async def _fence(self, run: R, action: MigrateVm, decision: FenceFirst, now: datetime) -> None:
        """Fence the silent source: a journaled step of its own (intent, agent, outcome)."""
        fence = FenceHost(
            vm=action.vm,
            connector_id=decision.host,
            agent_id=decision.agent_id,
            host=decision.host,
        )
        record = self._get(run)
        intent = Intent(
            step_id=self._new_uuid(),
            tenant=run.target.tenant,
            deployment=run.target.name,
            depid=record.depid,
            operation=run.operation,
            action=fence,
        )
        step = StepInFlight(
            step_id=intent.step_id,
            action="FenceHost",
            vm_name=action.vm.name,
            connector_id=decision.host,
            started=now,
            detail=f"fencing {decision.host} with agent {decision.agent_id} before moving "
            f"{action.vm.name}",
        )
        record = self._put(replace(record, step=step))
        await self._journal.record_intent(intent, record=record)
        result = await self._proof.fence(decision, now=now)
        failpoints.hit("move.fenced")
        status = StepStatus.DONE if isinstance(result, FenceProof) else StepStatus.FAILED
        record = self._put(replace(self._get(run), step=None))
        await self._journal.record_outcome(
            Outcome(step_id=intent.step_id, status=status), record=record
        )

    def _port_ids(self, run: R, action: Action) -> dict[int, str | None]:
        """The port ids the VM had where it last ran, kept by a move (where the target lets
        the orchestrator choose them); the record's observation survives a restart."""
        if not isinstance(action, MigrateVm) or action.mode is MigrationMode.COPY_DISK:
            return {}
        entry = self._get(run).vm(action.vm.name)
        if entry is None or entry.observed is None:
            return {}
        return {n.nicid: n.port_id for n in entry.observed.interfaces if n.port_id}

    def _settling(
        self, run: R, action: Action, obs: Observation
    ) -> StepInFlight | NotAliveAfterMove | None:
        """A group moves one VM at a time: before moving another VM of the same group, the
        VM moved last must be alive on its target — its KPI's verdict where it is monitored
        (:class:`~esc_orch.reactor.alive.AliveVerdicts`), else running as the VIM reports.
        None: go on; a step: wait (opdata shows it); a failure once ``_alive_timeout`` passed.
        """
        if not isinstance(action, MigrateVm) or action.mode is MigrationMode.COPY_DISK:
            return None
        for name, connector_id in run.moved.items():
            vm = self._get(run).vm(name)
            if name == action.vm.name or vm is None or vm.identity.group != action.vm.group:
                continue
            if vm.wanted_off:
                continue  # stopped by the operator: it is not meant to run, nothing to wait for
            by_kpi = (
                self._alive.enabled
                and vm.identity.group in run.target.alive_by_monitor
                and not vm.unmonitored
            )
            now = self._clock()
            booted = vm.booted_at or now
            if by_kpi:
                ok = self._alive.alive_since(name, booted)
            else:
                view = obs.view(connector_id)
                ok = view is not None and any(
                    s.name == name and s.power is PowerState.RUNNING for s in view.vms
                )
            if ok:
                self._alive.done(name)
                continue
            since = run.settle_since.setdefault(name, now)
            if by_kpi:
                self._alive.await_vm(name, since=booted)
            waited = (now - since).total_seconds()
            if waited >= self._alive_timeout:
                self._alive.done(name)
                return NotAliveAfterMove(
                    vm_name=name, connector_id=connector_id, next_vm=action.vm.name,
                    waited_s=int(waited), by_kpi=by_kpi,
                )  # fmt: skip
            what = (
                "alive (its KPI)" if by_kpi else "running as the VIM reports (it is not monitored)"
            )
            return StepInFlight(
                step_id=f"wait-for-alive-{name}",
                action="WaitForAlive",
                vm_name=name,
                connector_id=connector_id,
                started=since,
                detail=(
                    f"{action.vm.name} moves next, once {name} is {what} on {connector_id}: "
                    f"waited {int(waited)} s of at most {self._alive_timeout:g} s"
                ),
            )
        return None

    def _copy_progress(self, run: R, step_id: str) -> ProgressCallback:
        """A disk copy's progress into the record's step (opdata ``eo:current_step``)."""

        def update(done: DiskCopyProgress) -> None:
            record = self._get(run)
            step = record.step
            if step is None or step.step_id != step_id:
                return
            share = done.bytes_done * 100 // done.bytes_total if done.bytes_total else 100
            detail = (
                f"copying the disk of {step.vm_name}: {done.bytes_done} of "
                f"{done.bytes_total} bytes ({share} %)"
            )
            self._put(
                replace(
                    record,
                    step=replace(
                        step,
                        detail=detail,
                        bytes_done=done.bytes_done,
                        bytes_total=done.bytes_total,
                    ),
                )
            )

        return update
