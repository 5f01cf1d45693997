"""Group commit of the lifecycle's writes (store/groupcommit.py, store/journal.py).

The mechanics the crash guarantees rest on: writes queued while a commit runs become one
transaction; a waiter wakes only when its write (and every earlier one) is durable; a write
nobody waits for is made durable by the next awaited write, or by itself a moment later; one
bad write fails alone; each deployment's record is written once per batch, the last one.
Durability is checked from another connection, never from the writer's memory. The crash
itself (kill -9 before a batch commits) is tests/reliability/test_crash_events.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from esc_orch.model.actions import CreateVm
from esc_orch.model.events import EscEvent, EventInfo, EventStatus, EventType
from esc_orch.model.lifecycle import LifecycleOperation, VmIdentity
from esc_orch.model.ports import Intent
from esc_orch.model.record import DeploymentRecord
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.groupcommit import GroupCommit
from esc_orch.store.journal import LifecycleStore
from esc_orch.store.tables import MetaRow
from esc_orch.vim.types import VmSpec

# ---------------------------------------------------------------------- the generic queue


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'gc.sqlite'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)"))
    yield eng
    eng.dispose()


def _values(engine: Engine) -> list[int]:
    """What is durable, read on a connection of its own."""
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT v FROM t ORDER BY rowid"))]


class Gated:
    """``apply`` that inserts each change (an int) and holds the first batch until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, session: Session, changes: Sequence[int]) -> None:
        self.batches.append(list(changes))
        if len(self.batches) == 1:
            self.entered.set()
            self.release.wait(5)
        for v in changes:
            session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})


async def _until(event: threading.Event) -> None:
    await asyncio.to_thread(event.wait, 5)


def test_writes_queued_during_a_commit_are_one_transaction_in_order(engine: Engine) -> None:
    apply = Gated()
    writer: GroupCommit[int] = GroupCommit(engine=engine, apply=apply)

    async def main() -> None:
        first = asyncio.create_task(writer.write(0))
        await _until(apply.entered)  # the worker is inside the first transaction
        rest = [asyncio.create_task(writer.write(v)) for v in range(1, 11)]
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in rest)  # nobody is woken before its commit
        apply.release.set()
        await asyncio.gather(first, *rest)
        assert _values(engine) == list(range(11))  # every waiter woke to a durable write

    asyncio.run(main())
    writer.close()
    assert apply.batches == [[0], list(range(1, 11))]
    assert writer.commits == 2 and writer.changes == 11


def test_a_write_nobody_waits_for_is_durable_with_the_next_awaited_one(engine: Engine) -> None:
    apply = Gated()
    writer: GroupCommit[int] = GroupCommit(engine=engine, apply=apply, linger=10.0)

    async def main() -> None:
        first = asyncio.create_task(writer.write(0))
        await _until(apply.entered)
        writer.write_later(1)
        writer.write_later(2)
        apply.release.set()
        await first
        await writer.write(3)  # ends the (long) linger at once, commits 1 and 2 with it
        assert _values(engine) == [0, 1, 2, 3]

    asyncio.run(main())
    writer.close()
    assert apply.batches == [[0], [1, 2, 3]]


def test_a_write_nobody_waits_for_commits_by_itself_after_the_linger(engine: Engine) -> None:
    writer: GroupCommit[int] = GroupCommit(engine=engine, apply=Gated(), linger=0.01)
    writer._apply = lambda s, c: [  # type: ignore[method-assign]
        s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v}) for v in c
    ]

    async def main() -> None:
        writer.write_later(7)
        for _ in range(200):
            if _values(engine) == [7]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the lone write was never committed")

    asyncio.run(main())
    writer.close()


def test_a_bad_write_fails_alone_and_the_batch_commits_in_order(engine: Engine) -> None:
    apply = Gated()
    writer: GroupCommit[int] = GroupCommit(engine=engine, apply=apply)

    async def main() -> None:
        first = asyncio.create_task(writer.write(0))
        await _until(apply.entered)
        tasks = [asyncio.create_task(writer.write(v)) for v in (1, 0, 2)]  # 0 again: UNIQUE
        writer.write_later(0)  # nobody waits: logged, not raised
        apply.release.set()
        await first
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)
        await writer.barrier()
        assert _values(engine) == [0, 1, 2]

    asyncio.run(main())
    writer.close()


def test_a_call_runs_after_every_write_queued_before_it(engine: Engine) -> None:
    apply = Gated()
    writer: GroupCommit[int] = GroupCommit(engine=engine, apply=apply)

    async def main() -> None:
        first = asyncio.create_task(writer.write(0))
        await _until(apply.entered)
        writer.write_later(1)
        seen = asyncio.create_task(writer.call(lambda: _values(engine)))
        apply.release.set()
        await first
        assert await seen == [0, 1]

    asyncio.run(main())
    writer.close()


# ---------------------------------------------------------------------- the lifecycle store


@pytest.fixture
def datastore(store: SqlDatastore) -> SqlDatastore:
    """The store fixture of conftest.py: SQLite, and PostgreSQL when one is available."""
    return store


VM = VmIdentity(
    deployment="dep", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
)


def _event(n: int) -> EscEvent:
    return EscEvent(
        status=EventStatus.SUCCESS,
        status_code=200,
        status_message=f"event {n}",
        event=EventInfo(type=EventType.VM_DEPLOYED),
        depname="dep",
        tenant="t",
        tenant_id="t",
        depid="d1",
    )


def _record(n: int) -> DeploymentRecord:
    return DeploymentRecord(tenant="t", name="dep", depid=f"d{n}")


def _intent(step: str) -> Intent:
    spec = VmSpec(name=VM.name, vcpus=1, memory_mb=512, disk_mb=1024, image="i")
    return Intent(
        step_id=step,
        tenant="t",
        deployment="dep",
        depid="d1",
        operation=LifecycleOperation.DEPLOY,
        action=CreateVm(vm=VM, connector_id="C", vim_project=None, spec=spec),
    )


class CounterLock:
    """Holds the event counter's row in a transaction of its own: a batch that logs an event
    waits for it (the write lock on SQLite, the row lock on PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._conn = engine.connect()
        self._tx = self._conn.begin()
        self._conn.execute(
            update(MetaRow).where(MetaRow.name == "event_id").values(value=MetaRow.value)
        )

    def release(self) -> None:
        self._tx.rollback()
        self._conn.close()


def test_events_of_one_deployment_in_one_batch_write_its_last_record(
    datastore: SqlDatastore,
) -> None:
    store = LifecycleStore(engine=datastore.engine, events=datastore.events)

    async def main() -> None:
        lock = CounterLock(datastore.engine)
        first = asyncio.create_task(store.save(_record(0), events=[_event(0)]))
        await asyncio.sleep(0.2)  # the worker's first batch waits for the lock
        for n in range(1, 21):  # published: queued, not waited for
            await store.publish(_event(n), record=_record(n))
        last = asyncio.create_task(store.save(_record(21)))
        await asyncio.sleep(0.05)
        assert not last.done()
        before = store.commits()
        lock.release()
        await asyncio.gather(first, last)
        assert store.commits() - before == 2  # the first batch, then all 21 others at once
        (record,) = await store.records()
        assert record.depid == "d21"  # the last record of the batch is the one written

    asyncio.run(main())
    store.close()
    assert [e.id for e in datastore.events.read()] == list(range(1, 22))
    messages = [e.payload for e in datastore.events.read()]
    assert all(f"event {n}<".encode() in m for n, m in enumerate(messages))


def test_an_intent_queued_after_a_published_event_makes_both_durable(
    datastore: SqlDatastore,
) -> None:
    """Write-ahead: when record_intent returns (before the step's VIM call), the events the
    reactor published before it are in the log too."""
    store = LifecycleStore(engine=datastore.engine, events=datastore.events)

    async def main() -> None:
        store._writer._linger = 10.0
        await store.publish(_event(1), record=_record(1))
        await store.record_intent(_intent("s1"), record=_record(2))
        assert [e.id for e in datastore.events.read()] == [1]  # another connection sees it
        assert [i.step_id for i in await store.unfinished()] == ["s1"]

    asyncio.run(main())
    store.close()


def test_a_bad_intent_fails_alone_the_others_of_its_batch_commit(datastore: SqlDatastore) -> None:
    store = LifecycleStore(engine=datastore.engine, events=datastore.events)

    async def main() -> None:
        await store.record_intent(_intent("s1"), record=_record(1))
        lock = CounterLock(datastore.engine)
        first = asyncio.create_task(store.save(_record(1), events=[_event(1)]))
        await asyncio.sleep(0.2)
        again = asyncio.create_task(store.record_intent(_intent("s1"), record=_record(2)))
        other = asyncio.create_task(store.record_intent(_intent("s2"), record=_record(3)))
        await asyncio.sleep(0.05)
        lock.release()
        await first
        with pytest.raises(IntegrityError):
            await again  # step ids are unique
        await other
        assert [i.step_id for i in await store.unfinished()] == ["s1", "s2"]
        (record,) = await store.records()
        assert record.depid == "d3"

    asyncio.run(main())
    store.close()
