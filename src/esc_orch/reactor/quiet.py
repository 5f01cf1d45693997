"""What a run does without an escEvent: a resync waiting for a silent host, a stale copy told.

A mixin of :class:`~esc_orch.reactor.converge.Converger` (kept apart so each module stays
small):

* :meth:`QuietSteps._silent_host` / :meth:`QuietSteps._wait_for_host`: a resync (start-up,
  periodic, a connector's return) is nobody's update, so a silent host blocking it is shown as
  a wait (``WaitForHost`` in the record's step, opdata ``eo:current_step``) and the run ends
  without an event, the deployment keeping its state; the host's return re-arms it;
* :meth:`QuietSteps._stale_removed`: a stale copy removed from a returning host is told with
  our own notification ``eo:stale-copy-removed`` (:mod:`esc_orch.model.eo_events`), logged
  with the record, and a WARNING.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from esc_orch.model.actions import Blocked, DeleteVm
from esc_orch.model.clock import Clock
from esc_orch.model.eo_events import LogEntry
from esc_orch.model.failure import HostUnreachable
from esc_orch.model.lifecycle import DeploymentState, LifecycleOperation
from esc_orch.model.ports import Journal
from esc_orch.model.record import DeploymentRecord, RecordChange, StepInFlight
from esc_orch.reactor.report import Reporter
from esc_orch.reactor.status import DeploymentTarget, RunOutcome
from esc_orch.reconcile.observed import Observation

log = logging.getLogger(__name__)


class QuietRun(Protocol):
    """What of a run these steps read (``converge._Run``)."""

    target: DeploymentTarget
    operation: LifecycleOperation
    reporter: Reporter
    reported: bool
    steps: int
    notes: list[str]
    obs: Observation | None
    state_before: DeploymentState
    waiting_since: datetime | None


R = TypeVar("R", bound=QuietRun)


def _where(target: DeploymentTarget, action: DeleteVm | None = None) -> dict[str, str]:
    fields = {"deployment": f"{target.tenant}/{target.name}"}
    if action is not None:
        fields |= {"vm": action.vm.name, "connector": action.connector_id}
    return fields


class QuietSteps(Generic[R]):
    """Waits and notices of a run; the converger provides the record and event ports."""

    _clock: Clock
    _journal: Journal

    def _get(self, run: R) -> DeploymentRecord:
        raise NotImplementedError

    def _put(self, record: DeploymentRecord) -> DeploymentRecord:
        raise NotImplementedError

    async def _publish(self, run: R, event: LogEntry, record: RecordChange) -> None:
        raise NotImplementedError

    def _silent_host(self, run: R, blocked: tuple[Blocked, ...]) -> StepInFlight | None:
        """A resync (start-up, periodic, a connector's return) that only a silent host
        blocks: the step opdata shows while it waits (None when the wait is an update's)."""
        if not run.target.resync or run.reported or not blocked:
            return None
        if not all(isinstance(b.failure, HostUnreachable) for b in blocked):
            return None
        first = blocked[0]
        silent = sorted({b.connector_id for b in blocked})
        names = ", ".join(silent)
        verb = "does" if len(silent) == 1 else "do"
        if run.waiting_since is None:
            run.waiting_since = self._clock()
        return StepInFlight(
            step_id=f"wait-for-host-{first.connector_id}",
            action="WaitForHost",
            vm_name=first.vm.name,
            connector_id=first.connector_id,
            started=run.waiting_since,
            detail=(
                f"VIM connector {names} {verb} not answer: the resync of this deployment "
                "(no update was asked) waits for it and is retried as soon as it answers"
                + ("; nothing was changed" if run.steps == 0 else "")
            ),
        )

    async def _wait_for_host(self, run: R, step: StepInFlight) -> RunOutcome:
        """End a resync that a silent host blocks without an event: the deployment keeps
        its state, the step shows the wait, and the host's return re-arms it at once."""
        # run=None: a resync's run ends here, a restart has nothing to finish (as _succeed)
        record = self._put(replace(self._get(run), state=run.state_before, step=step, run=None))
        await self._journal.save(record)
        log.info(
            "resync waits for a silent host: %s",
            step.detail,
            extra=_where(run.target) | {"connector": step.connector_id},
        )
        return RunOutcome(
            tenant=run.target.tenant,
            name=run.target.name,
            operation=run.operation,
            ok=True,
            steps=run.steps,
            notes=(*run.notes, step.detail or ""),
        )

    async def _stale_removed(self, run: R, action: DeleteVm) -> None:
        """Tell clients (``eo:stale-copy-removed``) and the log that a stale copy is gone."""
        view = run.obs.view(action.connector_id) if run.obs is not None else None
        found = next((v for v in view.vms if v.name == action.vm.name), None) if view else None
        notice = run.reporter.stale_copy(action, self._get(run), found=found)
        log.warning("%s", notice.message, extra=_where(run.target, action))
        await self._publish(run, notice, self._get(run))
