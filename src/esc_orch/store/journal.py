"""The reactor's durable memory: its journal, its per-deployment state, and its event log.

:class:`LifecycleStore` implements the reactor's two ports on the SQL database:

* :class:`~esc_orch.reactor.Journal` — ``lifecycle_journal`` rows: an intent is committed
  before ``record_intent`` returns, i.e. before the step touches any VIM.
* :class:`~esc_orch.reactor.EventSink` — events appended to the durable ``event_log``
  (``SqlDatastore.events``), from which NETCONF subscribers are served and replayed.

It also keeps ``lifecycle_state``: per deployment, what the reactor needs after a restart
(the depid, the VM identities it named, the spec last applied to each VM and where, the VMs
wanted off, the VMs whose monitoring is disabled, whether the deployment was ever active and
which run is unfinished). That row is updated in the same transaction as the journal entry or
event that changes it, so the two never disagree.

**No event is lost across a crash.** The reactor does ``intent → VIM call → outcome → event``.
A done (or failed) step's outcome is not written on its own: it is held until the next event
of the same deployment, and both are written in **one transaction** (with the state update).
So after a crash either both exist, or neither does and the intent is still open: on restart
the reactor marks it abandoned, re-observes, finds the VM by name and sends the owed event.
An outcome with no event after it is written at the next journal call for its deployment.
All database work runs on one worker thread, off the event loop, in call order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from esc_orch.model.actions import AcceptSpec, CreateVm, DeleteVm, MigrateVm, RecreateVm
from esc_orch.model.events import EscEvent, EventStatus, EventType
from esc_orch.model.lifecycle import AppliedVm, LifecycleOperation, VmIdentity
from esc_orch.reactor.journal import Intent, Outcome, StepStatus
from esc_orch.store import codec
from esc_orch.store.events import EventLog
from esc_orch.store.tables import JournalRow, LifecycleStateRow

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]

_DONE_EVENTS = {EventType.SERVICE_ALIVE, EventType.SERVICE_UPDATED}
_SERVICE_EVENTS = _DONE_EVENTS | {EventType.SERVICE_UNDEPLOYED}


@dataclass(frozen=True, kw_only=True)
class DeploymentMemory:
    """``lifecycle_state`` of one deployment, as the daemon hands it back to the reactor."""

    tenant: str
    deployment: str
    depid: str
    active: bool = False
    known: tuple[VmIdentity, ...] = ()
    applied: dict[str, AppliedVm] = field(default_factory=dict)
    stopped: frozenset[str] = frozenset()
    unmonitored: frozenset[str] = frozenset()
    alive: frozenset[str] = frozenset()
    #: The operation of a run that started (an intent was written) and sent no service event.
    unfinished: LifecycleOperation | None = None
    #: A serviceAction (START/STOP/REBOOT) accepted whose SERVICE_* event is not logged yet:
    #: recorded with the action, cleared with the event, so a crash in between owes it still.
    owed_service_action: str | None = None

    @property
    def key(self) -> Key:
        return (self.tenant, self.deployment)


def _memory_json(m: DeploymentMemory) -> str:
    return json.dumps(
        {
            "known": codec.encode(m.known),
            "applied": codec.encode(m.applied),
            "stopped": sorted(m.stopped),
            "unmonitored": sorted(m.unmonitored),
            "alive": sorted(m.alive),
            "unfinished": m.unfinished.value if m.unfinished else None,
            "owed_service_action": m.owed_service_action,
        },
        sort_keys=True,
    )


def _memory_of(row: LifecycleStateRow) -> DeploymentMemory:
    raw: dict[str, Any] = json.loads(row.memory)
    unfinished = raw.get("unfinished")
    return DeploymentMemory(
        tenant=row.tenant,
        deployment=row.deployment,
        depid=row.depid,
        active=bool(row.active),
        known=tuple(codec.identity_from(i) for i in raw.get("known", [])),
        applied={k: codec.applied_from(v) for k, v in raw.get("applied", {}).items()},
        stopped=frozenset(raw.get("stopped", [])),
        unmonitored=frozenset(raw.get("unmonitored", [])),
        alive=frozenset(raw.get("alive", [])),
        unfinished=LifecycleOperation(unfinished) if unfinished else None,
        owed_service_action=raw.get("owed_service_action"),
    )


def _with_vm(m: DeploymentMemory, vm: VmIdentity) -> DeploymentMemory:
    if any(k.name == vm.name for k in m.known):
        return m
    return DeploymentMemory(**{**_fields(m), "known": (*m.known, vm)})


def _fields(m: DeploymentMemory) -> dict[str, Any]:
    return {name: getattr(m, name) for name in m.__dataclass_fields__}


def _after_step(m: DeploymentMemory, intent: Intent) -> DeploymentMemory:
    """The memory once ``intent``'s step is done on the VIM."""
    action = intent.action
    name = action.vm.name
    if isinstance(action, CreateVm | RecreateVm | MigrateVm | AcceptSpec):
        applied = dict(m.applied)
        applied[name] = AppliedVm(
            connector_id=action.connector_id, vim_project=action.vim_project, spec=action.spec
        )
        return DeploymentMemory(**{**_fields(_with_vm(m, action.vm)), "applied": applied})
    if isinstance(action, DeleteVm) and action.report is not None:  # retired, not a stale copy
        return DeploymentMemory(
            **{
                **_fields(m),
                "known": tuple(k for k in m.known if k.name != name),
                "applied": {k: v for k, v in m.applied.items() if k != name},
                "stopped": m.stopped - {name},
                "unmonitored": m.unmonitored - {name},
                "alive": m.alive - {name},
            }
        )
    return m


class LifecycleStore:
    """Durable Journal + EventSink of the reactor, and its per-deployment memory."""

    def __init__(self, *, engine: Engine, events: EventLog) -> None:
        self._engine = engine
        self._events = events
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifecycle-store")
        #: Outcomes held until the next event of their deployment (see the module docstring).
        self._held: dict[Key, tuple[Intent, Outcome]] = {}
        self._open: dict[str, Intent] = {}

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    # ------------------------------------------------------------------ Journal

    async def record_intent(self, intent: Intent) -> None:
        held = self._held.pop((intent.tenant, intent.deployment), None)
        self._open[intent.step_id] = intent
        await self._run(lambda: self._write_intent(intent, held))

    async def record_outcome(self, outcome: Outcome) -> None:
        intent = self._open.pop(outcome.step_id, None)
        if intent is None:
            raise KeyError(f"no open intent {outcome.step_id!r}")
        key = (intent.tenant, intent.deployment)
        earlier = self._held.pop(key, None)
        if earlier is not None:
            await self._run(lambda: self._write_outcomes([earlier]))
        if outcome.status in (StepStatus.DONE, StepStatus.FAILED):
            # Written with the next event of the deployment; nothing is awaited from here to
            # the reactor's publish, so no other step of this deployment can come between.
            self._held[key] = (intent, outcome)
            return
        await self._run(lambda: self._write_outcomes([(intent, outcome)]))

    async def unfinished(self) -> tuple[Intent, ...]:
        await self.flush()
        intents = await self._run(self._read_unfinished)
        for intent in intents:
            self._open[intent.step_id] = intent
        return intents

    async def flush(self) -> None:
        """Write every held outcome (shutdown, or before reading the journal)."""
        held, self._held = list(self._held.values()), {}
        if held:
            await self._run(lambda: self._write_outcomes(held))

    # ------------------------------------------------------------------ EventSink

    async def publish(self, event: EscEvent) -> None:
        key = (event.tenant or "", event.depname or "")
        held = self._held.pop(key, None)
        try:
            await self._run(lambda: self._write_event(key, event, held))
        except Exception:  # the sink must not raise into the reactor
            log.exception("lifecycle: could not log %s", event.event.type)

    async def emit(self, events: Sequence[EscEvent]) -> None:
        """Log events that are not the reactor's (actions, monitoring flags), in order."""
        await self._run(lambda: self._emit_plain(list(events)))

    # ------------------------------------------------------------------ memory

    async def memories(self) -> tuple[DeploymentMemory, ...]:
        return await self._run(self._read_memories)

    async def set_flags(
        self,
        *,
        tenant: str,
        deployment: str,
        stopped: Iterable[str] | None = None,
        unmonitored: Iterable[str] | None = None,
        owed_service_action: str | None = None,
        settle_service_action: bool = False,
        run_finished: bool = False,
        events: Sequence[EscEvent] = (),
    ) -> None:
        """Change the VMs wanted off / unmonitored (and log ``events``) in one transaction.

        ``owed_service_action`` records a serviceAction whose SERVICE_* event is owed;
        ``settle_service_action`` clears it, in the transaction that logs that event.
        ``run_finished`` says a quiet run (an action's: no service event of its own) ended, so
        a restart must not finish it again.
        """

        def write() -> None:
            with Session(self._engine) as session, session.begin():
                row = session.get(LifecycleStateRow, (tenant, deployment))
                if row is None:
                    raise LookupError(f"no lifecycle state for {tenant}/{deployment}")
                memory = _memory_of(row)
                changes: dict[str, Any] = {}
                if stopped is not None:
                    changes["stopped"] = frozenset(stopped)
                if unmonitored is not None:
                    changes["unmonitored"] = frozenset(unmonitored)
                if owed_service_action is not None:
                    changes["owed_service_action"] = owed_service_action
                if settle_service_action:
                    changes["owed_service_action"] = None
                if run_finished:
                    changes["unfinished"] = None
                row.memory = _memory_json(DeploymentMemory(**{**_fields(memory), **changes}))
                self._events.append(session, list(events))

        await self._run(write)

    # ------------------------------------------------------------------ worker thread

    def _load(self, session: Session, tenant: str, deployment: str, depid: str) -> DeploymentMemory:
        row = session.get(LifecycleStateRow, (tenant, deployment))
        if row is None:
            return DeploymentMemory(tenant=tenant, deployment=deployment, depid=depid)
        return _memory_of(row)

    @staticmethod
    def _save(session: Session, memory: DeploymentMemory) -> None:
        session.merge(
            LifecycleStateRow(
                tenant=memory.tenant,
                deployment=memory.deployment,
                depid=memory.depid,
                active=memory.active,
                memory=_memory_json(memory),
            )
        )

    def _write_intent(self, intent: Intent, held: tuple[Intent, Outcome] | None) -> None:
        with Session(self._engine) as session, session.begin():
            if held is not None:
                self._apply_outcome(session, *held)
            session.add(
                JournalRow(
                    step_id=intent.step_id,
                    tenant=intent.tenant,
                    deployment=intent.deployment,
                    depid=intent.depid,
                    operation=intent.operation.value,
                    action=codec.action_to_json(intent.action),
                )
            )
            memory = self._load(session, intent.tenant, intent.deployment, intent.depid)
            if intent.action.vm.vmid:
                memory = _with_vm(memory, intent.action.vm)
            memory = DeploymentMemory(
                **{**_fields(memory), "depid": intent.depid, "unfinished": intent.operation}
            )
            self._save(session, memory)

    def _write_outcomes(self, pairs: Sequence[tuple[Intent, Outcome]]) -> None:
        with Session(self._engine) as session, session.begin():
            for intent, outcome in pairs:
                self._apply_outcome(session, intent, outcome)

    def _apply_outcome(self, session: Session, intent: Intent, outcome: Outcome) -> None:
        session.execute(
            update(JournalRow)
            .where(JournalRow.step_id == outcome.step_id)
            .values(status=outcome.status.value, detail=outcome.detail)
        )
        # A "replan" outcome is DONE with nothing changed on the VIM (reactor.engine._step).
        changed = outcome.status is StepStatus.DONE and not (outcome.detail or "").startswith(
            "replan:"
        )
        if changed:
            memory = self._load(session, intent.tenant, intent.deployment, intent.depid)
            self._save(session, _after_step(memory, intent))

    def _write_event(self, key: Key, event: EscEvent, held: tuple[Intent, Outcome] | None) -> None:
        with Session(self._engine) as session, session.begin():
            if held is not None:
                self._apply_outcome(session, *held)
            row = session.get(LifecycleStateRow, key)
            ok = event.status is EventStatus.SUCCESS
            kind = event.event.type
            if row is not None:
                memory = _memory_of(row)
                if kind is EventType.SERVICE_UNDEPLOYED and ok:
                    session.execute(
                        delete(LifecycleStateRow).where(
                            LifecycleStateRow.tenant == key[0],
                            LifecycleStateRow.deployment == key[1],
                        )
                    )
                    row = None
                elif kind in _SERVICE_EVENTS:
                    changes: dict[str, Any] = {"unfinished": None}
                    if kind in _DONE_EVENTS and ok:
                        changes["active"] = True
                    self._save(session, DeploymentMemory(**{**_fields(memory), **changes}))
                elif kind is EventType.VM_ALIVE and event.vm_source is not None:
                    alive = memory.alive | {event.vm_source.vmname or ""}
                    self._save(session, DeploymentMemory(**{**_fields(memory), "alive": alive}))
            self._events.append(session, [event])

    def _emit_plain(self, events: list[EscEvent]) -> None:
        if events:
            self._events.emit(events)

    def _read_unfinished(self) -> tuple[Intent, ...]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(JournalRow).where(JournalRow.status.is_(None)).order_by(JournalRow.seq)
            ).all()
            return tuple(
                Intent(
                    step_id=row.step_id,
                    tenant=row.tenant,
                    deployment=row.deployment,
                    depid=row.depid,
                    operation=LifecycleOperation(row.operation),
                    action=codec.action_from_json(row.action),
                )
                for row in rows
            )

    def _read_memories(self) -> tuple[DeploymentMemory, ...]:
        with Session(self._engine) as session:
            rows = session.scalars(select(LifecycleStateRow)).all()
            return tuple(_memory_of(row) for row in rows)

    def prune_journal(self, *, keep: int = 10_000) -> int:
        """Delete finished steps beyond the newest ``keep`` (open intents are always kept)."""
        with Session(self._engine) as session, session.begin():
            newest = session.scalar(select(JournalRow.seq).order_by(JournalRow.seq.desc()))
            if newest is None:
                return 0
            result: Any = session.execute(
                delete(JournalRow).where(
                    JournalRow.status.is_not(None), JournalRow.seq <= newest - keep
                )
            )
            return int(result.rowcount or 0)
