"""The reactor's durable memory: its journal, its deployment records, and its event log.

:class:`LifecycleStore` implements the reactor's ports (:mod:`esc_orch.model.ports`) on SQL:

* the journal — ``lifecycle_journal`` rows: an intent is committed before ``record_intent``
  returns, i.e. before the step touches any VIM;
* the event sink — events appended to the durable ``event_log`` (``SqlDatastore.events``),
  from which NETCONF subscribers are served and replayed;
* ``lifecycle_state`` — one row per deployment holding its
  :class:`~esc_orch.model.record.DeploymentRecord` exactly as the reactor produced it (JSON,
  ``store/codec.py``). Every write that carries a record stores it in the same transaction as
  the journal entry or event it came with, so the two never disagree. The store never reads
  an intent or an event to work out what a deployment is: the record says it.

**No event is lost across a crash.** The reactor does ``intent → VIM call → outcome → event``.
A done (or failed) step's outcome is not written on its own: it is held (with its record)
until the next event of the same deployment, and both are written in **one transaction**. So
after a crash either both exist, or neither does and the intent is still open: on restart the
reactor marks it abandoned, re-observes, finds the VM by name and sends the owed event. An
outcome with no event after it is written at the next write for its deployment.

**No event is owed only in memory.** What a crash leaves owed is durable before anything can
depend on it: the event of a step whose intent was found open is in the deployment's record
(``VmRecord.owed``), written in the transaction that marks the intent abandoned and cleared
in the one that logs the event; the service event of a committed change is a
``lifecycle_owed_run`` row written by the commit's own transaction (``store/datastore.py``)
and deleted by the transaction that writes a record whose ``settled_txid`` covers it.
All database work runs on one worker thread, off the event loop, in call order.

Failpoints (:mod:`esc_orch.failpoints`) ``lifecycle.after-intent``,
``lifecycle.before-outcome`` and ``lifecycle.after-event`` mark the points crash tests stop at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from esc_orch import failpoints
from esc_orch.model.eo_events import LogEntry, entry_type
from esc_orch.model.events import EscEvent
from esc_orch.model.failure import describe
from esc_orch.model.lifecycle import LifecycleOperation
from esc_orch.model.ports import Intent, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, RecordChange, Undeployed
from esc_orch.store import codec
from esc_orch.store.events import EventLog
from esc_orch.store.tables import JournalRow, LifecycleStateRow, MonitorStateRow, OwedRunRow

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]
#: An outcome waiting for the next event of its deployment, with the record after its step.
Held = tuple[Outcome, DeploymentRecord | None]


class LifecycleStore:
    """Durable Journal + EventSink of the reactor, and its deployment records."""

    def __init__(self, *, engine: Engine, events: EventLog) -> None:
        self._engine = engine
        self._events = events
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifecycle-store")
        #: Outcomes held until the next event of their deployment (see the module docstring).
        self._held: dict[Key, Held] = {}
        self._open: dict[str, Key] = {}

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    # ------------------------------------------------------------------ Journal

    async def record_intent(self, intent: Intent, *, record: DeploymentRecord) -> None:
        key = (intent.tenant, intent.deployment)
        held = self._held.pop(key, None)
        self._open[intent.step_id] = key
        await self._run(lambda: self._write_intent(intent, record, held))
        failpoints.hit("lifecycle.after-intent")

    async def record_outcome(self, outcome: Outcome, *, record: DeploymentRecord | None) -> None:
        failpoints.hit("lifecycle.before-outcome")
        key = self._open.pop(outcome.step_id, None)
        if key is None:
            raise KeyError(f"no open intent {outcome.step_id!r}")
        earlier = self._held.pop(key, None)
        if earlier is not None:
            await self._run(lambda: self._write_held(key, earlier))
        if outcome.status is not StepStatus.ABANDONED:
            # Written with the next event of the deployment; nothing is awaited from here to
            # the reactor's publish, so no other step of this deployment can come between.
            self._held[key] = (outcome, record)
            failpoints.hit("lifecycle.after-outcome")
            return
        await self._run(lambda: self._write_held(key, (outcome, record)))
        failpoints.hit("lifecycle.after-outcome")

    async def unfinished(self) -> tuple[Intent, ...]:
        await self.flush()
        intents = await self._run(self._read_unfinished)
        for intent in intents:
            self._open[intent.step_id] = (intent.tenant, intent.deployment)
        return intents

    async def records(self) -> tuple[DeploymentRecord, ...]:
        return await self._run(self._read_records)

    async def owed_runs(self) -> dict[Key, int]:
        """Deployments whose committed change has no service event logged yet: its txid."""
        return await self._run(self._read_owed_runs)

    async def save(self, record: DeploymentRecord, *, events: Sequence[EscEvent] = ()) -> None:
        held = self._held.pop(record.key, None)

        def write() -> None:
            with Session(self._engine) as session, session.begin():
                if held is not None:
                    self._apply(session, record.key, held)
                self._put(session, record)
                self._events.append(session, list(events))

        await self._run(write)
        if events:
            failpoints.hit("lifecycle.after-event")

    async def flush(self) -> None:
        """Write every held outcome (shutdown, or before reading the journal)."""
        held, self._held = list(self._held.items()), {}
        if held:

            def write() -> None:
                with Session(self._engine) as session, session.begin():
                    for key, entry in held:
                        self._apply(session, key, entry)

            await self._run(write)

    # ------------------------------------------------------------------ monitor state

    async def save_state(
        self,
        *,
        states: dict[str, str],
        records: Sequence[DeploymentRecord] = (),
        events: Sequence[EscEvent] = (),
    ) -> None:
        """Monitor state documents (name → JSON), ``records`` and ``events``: one transaction."""
        held = [(r.key, self._held.pop(r.key, None)) for r in records]

        def write() -> None:
            with Session(self._engine) as session, session.begin():
                for key, entry in held:
                    if entry is not None:
                        self._apply(session, key, entry)
                for record in records:
                    self._put(session, record)
                for name, value in states.items():
                    session.merge(MonitorStateRow(name=name, value=value))
                self._events.append(session, list(events))

        await self._run(write)

    async def load_state(self, name: str) -> str | None:
        def read() -> str | None:
            with Session(self._engine) as session:
                row = session.get(MonitorStateRow, name)
                return None if row is None else row.value

        return await self._run(read)

    # ------------------------------------------------------------------ EventSink

    async def publish(self, event: LogEntry, *, record: RecordChange) -> None:
        held = self._held.pop(record.key, None)
        try:
            await self._run(lambda: self._write_event(event, record, held))
        except Exception:  # the sink must not raise into the reactor
            log.exception("lifecycle: could not log %s", entry_type(event))
        failpoints.hit("lifecycle.after-event")

    async def emit(self, events: Sequence[EscEvent]) -> None:
        """Log events that are not the reactor's (actions on a deployment gone), in order."""
        await self._run(lambda: self._emit_plain(list(events)))

    # ------------------------------------------------------------------ worker thread

    @staticmethod
    def _settle(session: Session, key: Key, txid: int) -> None:
        """The service events owed by commits up to ``txid`` are logged (this transaction)."""
        if txid > 0:
            session.execute(
                delete(OwedRunRow).where(
                    OwedRunRow.tenant == key[0],
                    OwedRunRow.deployment == key[1],
                    OwedRunRow.txid <= txid,
                )
            )

    @classmethod
    def _put(cls, session: Session, record: DeploymentRecord) -> None:
        cls._settle(session, record.key, record.settled_txid)
        session.merge(
            LifecycleStateRow(
                tenant=record.tenant,
                deployment=record.name,
                depid=record.depid,
                state=record.state.value,
                record=codec.record_to_json(record),
            )
        )

    @staticmethod
    def _drop(session: Session, key: Key) -> None:
        session.execute(
            delete(LifecycleStateRow).where(
                LifecycleStateRow.tenant == key[0], LifecycleStateRow.deployment == key[1]
            )
        )

    def _write_intent(self, intent: Intent, record: DeploymentRecord, held: Held | None) -> None:
        with Session(self._engine) as session, session.begin():
            if held is not None:
                self._apply(session, record.key, held)
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
            self._put(session, record)

    def _write_held(self, key: Key, held: Held) -> None:
        with Session(self._engine) as session, session.begin():
            self._apply(session, key, held)

    def _apply(self, session: Session, key: Key, held: Held) -> None:
        outcome, record = held
        detail = describe(outcome.failure) if outcome.failure is not None else None
        session.execute(
            update(JournalRow)
            .where(JournalRow.step_id == outcome.step_id)
            .values(status=outcome.status.value, detail=detail)
        )
        if record is not None:
            self._put(session, record)

    def _write_event(self, event: LogEntry, record: RecordChange, held: Held | None) -> None:
        with Session(self._engine) as session, session.begin():
            if held is not None:
                self._apply(session, record.key, held)
            if isinstance(record, Undeployed):
                self._drop(session, record.key)
                self._settle(session, record.key, record.settled_txid)
            else:
                self._put(session, record)
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

    def _read_records(self) -> tuple[DeploymentRecord, ...]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(LifecycleStateRow).order_by(
                    LifecycleStateRow.tenant, LifecycleStateRow.deployment
                )
            ).all()
            return tuple(codec.record_from_json(row.record) for row in rows)

    def _read_owed_runs(self) -> dict[Key, int]:
        with Session(self._engine) as session:
            rows = session.scalars(select(OwedRunRow)).all()
            return {(row.tenant, row.deployment): row.txid for row in rows}

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
