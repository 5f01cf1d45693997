"""The lifecycle's ports: what the reactor writes durably, defined where the store may see it.

The reactor (above ``reconcile``) writes its journal, its records and its events through these
protocols; the store (beside, importing only ``model``) implements them on SQL. Neither imports
the other: the daemon hands the store to the reactor.

The journal holds intended steps: written before a step acts, completed after. If the process
dies mid-step, the intents without an outcome say which VMs were being touched and under which
identity. Resuming never replays an intent blindly: the reactor marks it abandoned, observes
the VIMs again and re-plans, and because every action is idempotent by VM name the resumed run
cannot create a second VM.

Every write carries the deployment's record as the reactor now has it, so the store persists
that value as is (it never interprets intents or events to rebuild it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from esc_orch.model.actions import Action
from esc_orch.model.eo_events import LogEntry
from esc_orch.model.events import EscEvent
from esc_orch.model.failure import Failure
from esc_orch.model.lifecycle import LifecycleOperation
from esc_orch.model.record import DeploymentRecord, RecordChange


class StepStatus(StrEnum):
    DONE = "done"
    #: The VM was not where the plan expected: nothing changed on the VIM, re-planned.
    REPLANNED = "replanned"
    FAILED = "failed"
    ABANDONED = "abandoned"  # found unfinished after a restart; the run was re-planned


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """A step about to be taken. ``action.vm`` carries the VM's identity (name and vmid)."""

    step_id: str
    tenant: str
    deployment: str
    depid: str
    operation: LifecycleOperation
    action: Action


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    step_id: str
    status: StepStatus
    failure: Failure | None = None


class Journal(Protocol):
    """Durable record of steps and records. Every write is durable when it returns."""

    async def record_intent(self, intent: Intent, *, record: DeploymentRecord) -> None:
        """Called before the step touches any VIM (``record`` shows the step in flight)."""
        ...

    async def record_outcome(self, outcome: Outcome, *, record: DeploymentRecord | None) -> None:
        """The step is over (``record``: the deployment after it; ``None``: unchanged)."""
        ...

    async def unfinished(self) -> tuple[Intent, ...]:
        """Intents without an outcome, oldest first (read on start-up)."""
        ...

    async def records(self) -> tuple[DeploymentRecord, ...]:
        """Every persisted record (read on start-up)."""
        ...

    async def save(self, record: DeploymentRecord, *, events: Sequence[EscEvent] = ()) -> None:
        """Persist ``record`` (a flag changed) and log ``events``, in one transaction."""
        ...


class EventSink(Protocol):
    """Where the reactor sends escEvents (the event log and notification bus implement it).

    ``publish`` is awaited in event order for one deployment; it should return quickly and must
    not raise for a slow or absent subscriber. The sink stamps ``eventTime``. ``record`` is the
    deployment once the event is sent (or :class:`Undeployed`): a durable sink writes both
    together. Besides ESC's escEvent, ``event`` may be a notification of our own module
    (:mod:`esc_orch.model.eo_events`), logged and delivered the same way. A durable sink may
    return before the event is durable, if it keeps the order of its writes with the journal's
    (so the journal's next awaited write makes it durable too); ``durable`` waits for every
    event published so far (a run's end calls it).
    """

    async def publish(self, event: LogEntry, *, record: RecordChange) -> None: ...

    async def durable(self) -> None:
        """Return once every event published so far is durable."""
        ...
