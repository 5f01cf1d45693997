"""The journal of intended steps: written before a step acts, completed after.

If the process dies mid-step, the intents without an outcome say which VMs were being touched
and under which identity. Resuming never replays an intent blindly: the reactor marks it
abandoned, observes the VIMs again and re-plans with the identities the intents carried, and
because every action is idempotent by VM name (``ensure_vm`` creates nothing when the VM
exists) the resumed run cannot create a second VM. The store will implement :class:`Journal`
durably (one row per step); :class:`MemoryJournal` serves tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from esc_orch.model.actions import Action
from esc_orch.model.lifecycle import LifecycleOperation


class StepStatus(StrEnum):
    DONE = "done"
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
    detail: str | None = None


class Journal(Protocol):
    """Durable record of steps. Both writes must be durable when they return."""

    async def record_intent(self, intent: Intent) -> None:
        """Called before the step touches any VIM."""
        ...

    async def record_outcome(self, outcome: Outcome) -> None:
        """Called once the step is over (done, failed, or abandoned on resume)."""
        ...

    async def unfinished(self) -> tuple[Intent, ...]:
        """Intents without an outcome, oldest first (read on start-up)."""
        ...


@dataclass
class MemoryJournal:
    """In-memory :class:`Journal`; ``entries`` keeps every intent with its outcome."""

    entries: list[tuple[Intent, Outcome | None]] = field(default_factory=list)

    async def record_intent(self, intent: Intent) -> None:
        self.entries.append((intent, None))

    async def record_outcome(self, outcome: Outcome) -> None:
        for i, (intent, done) in enumerate(self.entries):
            if intent.step_id == outcome.step_id and done is None:
                self.entries[i] = (intent, outcome)
                return
        raise KeyError(f"no open intent {outcome.step_id!r}")

    async def unfinished(self) -> tuple[Intent, ...]:
        return tuple(intent for intent, done in self.entries if done is None)
