"""In-memory implementations of the lifecycle ports (:mod:`esc_orch.model.ports`), for tests.

The durable ones are in :mod:`esc_orch.store.journal`; these keep everything in lists so a
test can read what the reactor journaled, persisted and sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from esc_orch.model.eo_events import LogEntry, StaleCopyRemoved
from esc_orch.model.events import EscEvent, EventStatus, EventType
from esc_orch.model.ports import Intent, Journal, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, RecordChange, Undeployed

__all__ = ["Intent", "Journal", "MemoryEventSink", "MemoryJournal", "Outcome", "StepStatus"]


@dataclass
class MemoryJournal:
    """In-memory :class:`Journal`; ``entries`` keeps every intent with its outcome."""

    entries: list[tuple[Intent, Outcome | None]] = field(default_factory=list)
    saved: dict[tuple[str, str], DeploymentRecord] = field(default_factory=dict)

    async def record_intent(self, intent: Intent, *, record: DeploymentRecord) -> None:
        self.entries.append((intent, None))
        self.saved[record.key] = record

    async def record_outcome(self, outcome: Outcome, *, record: DeploymentRecord | None) -> None:
        for i, (intent, done) in enumerate(self.entries):
            if intent.step_id == outcome.step_id and done is None:
                self.entries[i] = (intent, outcome)
                if record is not None:
                    self.saved[record.key] = record
                return
        raise KeyError(f"no open intent {outcome.step_id!r}")

    async def unfinished(self) -> tuple[Intent, ...]:
        return tuple(intent for intent, done in self.entries if done is None)

    async def records(self) -> tuple[DeploymentRecord, ...]:
        return tuple(self.saved[k] for k in sorted(self.saved))

    async def save(self, record: DeploymentRecord, *, events: Sequence[EscEvent] = ()) -> None:
        self.saved[record.key] = record


@dataclass
class MemoryEventSink:
    """Keeps every event, in order, and the last record each one came with."""

    events: list[EscEvent] = field(default_factory=list)
    records: dict[tuple[str, str], DeploymentRecord] = field(default_factory=dict)
    #: Our own notifications (``eo:``), in order; ``events`` keeps ESC's escEvents only.
    notices: list[StaleCopyRemoved] = field(default_factory=list)

    async def publish(self, event: LogEntry, *, record: RecordChange) -> None:
        if isinstance(event, EscEvent):
            self.events.append(event)
        else:
            self.notices.append(event)
        if isinstance(record, Undeployed):
            self.records.pop(record.key, None)
        else:
            self.records[record.key] = record

    async def durable(self) -> None:
        """Kept in memory: published is as durable as it gets."""

    def types(self) -> list[str]:
        """``TYPE`` or ``TYPE/FAILURE``, in order, for compact assertions."""
        return [
            e.event.type.value + ("" if e.status is EventStatus.SUCCESS else "/FAILURE")
            for e in self.events
        ]

    def of(self, event_type: EventType) -> list[EscEvent]:
        return [e for e in self.events if e.event.type is event_type]
