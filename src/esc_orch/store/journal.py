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
**Group commit** (:mod:`esc_orch.store.groupcommit`). All database work runs on one worker
thread, off the event loop, in call order; the writes queued while a commit runs are committed
together, as one transaction (one commit for many deployments' steps). What a crash leaves
durable is therefore always a *prefix* of the writes in the order they were made. Within a
batch each deployment's record is written once, the last one (the earlier ones of the batch
are never visible to anybody), and all statements are Core ``executemany`` (no ORM unit of
work on this path).

**An event does not wait for its commit** (:meth:`LifecycleStore.publish` queues it and
returns): the reactor goes on observing and planning while it commits. That is safe because
every write that comes before a VIM call is awaited — an intent is durable before its step
touches a VIM (write-ahead), and being in the same ordered queue it makes every event queued
before it durable too. Between an event and the next awaited write the reactor only reads
(observes the VIMs, plans), so a crash that loses the queued tail leaves a state a crash just
before that event would have left: the intent it reports is still open, its record is the
earlier one, and the restart re-observes and sends what is owed (above). NETCONF subscribers
see an event only once committed. A run ends with :meth:`LifecycleStore.durable` (every event
of the run committed), so a finished run's events are in the log.

Failpoints (:mod:`esc_orch.failpoints`) ``lifecycle.after-intent``,
``lifecycle.before-outcome`` and ``lifecycle.after-event`` mark the points crash tests stop at
(``lifecycle.after-event`` fires on the worker right after the commit that made the event
durable, once per published event or per ``save`` with events, as before);
``lifecycle.before-commit`` just before the commit of a batch holding a published event the
reactor did not wait for: the crash that loses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, and_, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from esc_orch import failpoints
from esc_orch.model.eo_events import LogEntry
from esc_orch.model.failure import describe
from esc_orch.model.lifecycle import LifecycleOperation
from esc_orch.model.ports import Intent, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, RecordChange, Undeployed
from esc_orch.store import codec
from esc_orch.store.events import EventLog
from esc_orch.store.groupcommit import GroupCommit
from esc_orch.store.tables import JournalRow, LifecycleStateRow, MonitorStateRow, OwedRunRow

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]
#: An outcome waiting for the next event of its deployment, with the record after its step.
Held = tuple[Outcome, DeploymentRecord | None]

_JOURNAL = cast(Table, JournalRow.__table__)
_STATE = cast(Table, LifecycleStateRow.__table__)
_MONITOR = cast(Table, MonitorStateRow.__table__)
_OWED = cast(Table, OwedRunRow.__table__)
# Core statements built once (executemany with bound parameters).
_INSERT_INTENTS = insert(_JOURNAL)
_SET_OUTCOMES = (
    update(_JOURNAL)
    .where(_JOURNAL.c.step_id == bindparam("b_step"))
    .values(status=bindparam("b_status"), detail=bindparam("b_detail"))
)
_SETTLE = delete(_OWED).where(
    and_(
        _OWED.c.tenant == bindparam("b_tenant"),
        _OWED.c.deployment == bindparam("b_deployment"),
        _OWED.c.txid <= bindparam("b_txid"),
    )
)
_DROP = delete(_STATE).where(
    and_(_STATE.c.tenant == bindparam("b_tenant"), _STATE.c.deployment == bindparam("b_deployment"))
)


@dataclass(slots=True)
class Change:
    """What one write of the lifecycle makes durable; a batch applies many, in order."""

    intents: list[Intent] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    #: (deployment, its record or None to forget it, the commit txid its events settle).
    records: list[tuple[Key, DeploymentRecord | None, int]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    events: list[LogEntry] = field(default_factory=list)
    #: ``lifecycle.after-event`` hits once this is committed.
    event_hits: int = 0

    def hold(self, key: Key, held: Held | None) -> Change:
        """Add a held outcome (and its record) of ``key``."""
        if held is not None:
            outcome, record = held
            self.outcomes.append(outcome)
            if record is not None:
                self.put(record)
        return self

    def put(self, record: DeploymentRecord) -> Change:
        self.records.append((record.key, record, record.settled_txid))
        return self


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert ``rows`` or replace the rows with their ``keys`` (ON CONFLICT where it exists)."""
    name = conn.dialect.name
    if name == "sqlite":
        lite = sqlite_insert(table)
        others = {c.name: lite.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=others), rows)
        return
    if name == "postgresql":
        pg = pg_insert(table)
        others = {c.name: pg.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=others), rows)
        return
    for row in rows:  # any other dialect: delete, then insert (same transaction)
        conn.execute(delete(table).where(and_(*(table.c[k] == row[k] for k in keys))))
    conn.execute(insert(table), rows)


class LifecycleStore:
    """Durable Journal + EventSink of the reactor, and its deployment records."""

    def __init__(self, *, engine: Engine, events: EventLog) -> None:
        self._engine = engine
        self._events = events
        self._writer: GroupCommit[Change] = GroupCommit(
            engine=engine,
            apply=self._apply,
            committed=self._committed,
            before_commit=self._before_commit,
        )
        #: Outcomes held until the next event of their deployment (see the module docstring).
        self._held: dict[Key, Held] = {}
        self._open: dict[str, Key] = {}

    async def _run(self, fn: Callable[[], T]) -> T:
        return await self._writer.call(fn)

    def close(self) -> None:
        self._writer.close()

    def commits(self) -> int:
        """Transactions committed so far (bench figures)."""
        return self._writer.commits

    # ------------------------------------------------------------------ Journal

    async def record_intent(self, intent: Intent, *, record: DeploymentRecord) -> None:
        key = (intent.tenant, intent.deployment)
        change = Change(intents=[intent]).hold(key, self._held.pop(key, None)).put(record)
        self._open[intent.step_id] = key
        await self._writer.write(change)
        failpoints.hit("lifecycle.after-intent")

    async def record_outcome(self, outcome: Outcome, *, record: DeploymentRecord | None) -> None:
        failpoints.hit("lifecycle.before-outcome")
        key = self._open.pop(outcome.step_id, None)
        if key is None:
            raise KeyError(f"no open intent {outcome.step_id!r}")
        earlier = self._held.pop(key, None)
        if earlier is not None:
            await self._writer.write(Change().hold(key, earlier))
        if outcome.status is not StepStatus.ABANDONED:
            # Written with the next event of the deployment; nothing is awaited from here to
            # the reactor's publish, so no other step of this deployment can come between.
            self._held[key] = (outcome, record)
            failpoints.hit("lifecycle.after-outcome")
            return
        await self._writer.write(Change().hold(key, (outcome, record)))
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

    async def save(self, record: DeploymentRecord, *, events: Sequence[LogEntry] = ()) -> None:
        change = Change(events=list(events), event_hits=1 if events else 0)
        await self._writer.write(
            change.hold(record.key, self._held.pop(record.key, None)).put(record)
        )

    async def flush(self) -> None:
        """Write every held outcome (shutdown, or before reading the journal)."""
        held, self._held = list(self._held.items()), {}
        if held:
            change = Change()
            for key, entry in held:
                change.hold(key, entry)
            await self._writer.write(change)

    # ------------------------------------------------------------------ monitor state

    async def save_state(
        self,
        *,
        states: dict[str, str],
        records: Sequence[DeploymentRecord] = (),
        events: Sequence[LogEntry] = (),
    ) -> None:
        """Monitor state documents (name → JSON), ``records`` and ``events``: one transaction."""
        change = Change(states=dict(states), events=list(events))
        for record in records:
            change.hold(record.key, self._held.pop(record.key, None))
        for record in records:
            change.put(record)
        await self._writer.write(change)

    async def load_state(self, name: str) -> str | None:
        def read() -> str | None:
            with Session(self._engine) as session:
                row = session.get(MonitorStateRow, name)
                return None if row is None else row.value

        return await self._run(read)

    # ------------------------------------------------------------------ EventSink

    async def publish(self, event: LogEntry, *, record: RecordChange) -> None:
        """Queue ``event`` with ``record`` (and the deployment's held outcome); not waited for
        (see the module docstring). A failure to write it is logged, never raised."""
        change = Change(events=[event], event_hits=1).hold(
            record.key, self._held.pop(record.key, None)
        )
        if isinstance(record, Undeployed):
            change.records.append((record.key, None, record.settled_txid))
        else:
            change.put(record)
        self._writer.write_later(change)

    async def durable(self) -> None:
        """Return once every event published so far is committed."""
        await self._writer.barrier()

    async def emit(self, events: Sequence[LogEntry]) -> None:
        """Log events that are not the reactor's (actions on a deployment gone), in order."""
        if events:
            await self._writer.write(Change(events=list(events)))

    # ------------------------------------------------------------------ worker thread

    def _apply(self, session: Session, changes: Sequence[Change]) -> None:
        """Write a batch of changes in ``session``'s transaction (Core statements)."""
        intents: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        final: dict[Key, DeploymentRecord | None] = {}
        settle: dict[Key, int] = {}
        states: dict[str, str] = {}
        events: list[LogEntry] = []
        for change in changes:
            intents += [
                {
                    "step_id": i.step_id,
                    "tenant": i.tenant,
                    "deployment": i.deployment,
                    "depid": i.depid,
                    "operation": i.operation.value,
                    "action": codec.action_to_json(i.action),
                    "status": None,
                    "detail": None,
                }
                for i in change.intents
            ]
            outcomes += [
                {
                    "b_step": o.step_id,
                    "b_status": o.status.value,
                    "b_detail": describe(o.failure) if o.failure is not None else None,
                }
                for o in change.outcomes
            ]
            for key, record, txid in change.records:
                final[key] = record  # the last record of the batch is the one that counts
                if txid > 0:
                    settle[key] = max(settle.get(key, 0), txid)
            states.update(change.states)
            events += change.events
        conn = session.connection()
        if intents:  # before the outcomes: an outcome may close an intent of this batch
            conn.execute(_INSERT_INTENTS, intents)
        if outcomes:
            conn.execute(_SET_OUTCOMES, outcomes)
        if settle:
            conn.execute(
                _SETTLE,
                [{"b_tenant": k[0], "b_deployment": k[1], "b_txid": t} for k, t in settle.items()],
            )
        drops = [{"b_tenant": k[0], "b_deployment": k[1]} for k, r in final.items() if r is None]
        if drops:
            conn.execute(_DROP, drops)
        rows = [
            {
                "tenant": r.tenant,
                "deployment": r.name,
                "depid": r.depid,
                "state": r.state.value,
                "record": codec.record_to_json(r),
            }
            for r in final.values()
            if r is not None
        ]
        if rows:
            _upsert(conn, _STATE, rows, ["tenant", "deployment"])
        if states:
            _upsert(conn, _MONITOR, [{"name": n, "value": v} for n, v in states.items()], ["name"])
        self._events.append(session, events)  # last: appenders wait for the commit from here

    @staticmethod
    def _before_commit(_changes: Sequence[Change], unwaited: bool) -> None:
        if unwaited:
            failpoints.hit("lifecycle.before-commit")

    @staticmethod
    def _committed(changes: Sequence[Change]) -> None:
        for change in changes:
            for _ in range(change.event_hits):
                failpoints.hit("lifecycle.after-event")

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
