"""The durable event log: same transaction as the change, gapless ids, publish after commit."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy.orm import Session

from esc_orch.model.eo_events import parse_stale_copy_removed, stale_copy_removed
from esc_orch.model.errors import RpcErrors
from esc_orch.model.events import EscEvent, EventType, LoggedEvent
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.events import EventLog
from payloads import EXAMPLES, config_of, esc


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[LoggedEvent]] = []
        self.threads: set[str] = set()

    def __call__(self, events: Sequence[LoggedEvent]) -> None:
        self.batches.append(list(events))
        self.threads.add(threading.current_thread().name)

    @property
    def types(self) -> list[str]:
        return [e.event_type for batch in self.batches for e in batch]


def _tenant(name: str, op: str = "merge") -> str:
    return esc(f'<tenants><tenant nc:operation="{op}"><name>{name}</name></tenant></tenants>')


def test_config_edits_append_events_in_their_transaction(store: SqlDatastore) -> None:
    seen = Recorder()
    store.events.add_listener(seen)
    store.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a")))
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    store.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a", "delete")))
    connectors = (EXAMPLES / "vim_connectors.xml").read_text().count("<vim_connector>")
    assert seen.types == [
        "CREATE_TENANT",
        *["CREATE_VIM_CONNECTOR"] * connectors,
        "DELETE_TENANT",
    ]
    logged = store.events.read()
    assert [e.id for e in logged] == list(range(1, connectors + 3))
    assert [e.event_type for e in logged] == seen.types
    assert all(a.event_time < b.event_time for a, b in itertools.pairwise(logged))


def test_a_refused_edit_appends_and_publishes_nothing(store: SqlDatastore) -> None:
    seen = Recorder()
    store.events.add_listener(seen)
    store.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a")))
    with pytest.raises(RpcErrors):
        store.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a", "create")))
    assert seen.types == ["CREATE_TENANT"]
    assert store.events.last_id() == 1


def test_candidate_edits_emit_only_at_commit(store: SqlDatastore) -> None:
    seen = Recorder()
    store.events.add_listener(seen)
    store.edit_config(target=Datastore.CANDIDATE, config=config_of(_tenant("c")))
    assert seen.types == []
    store.commit()
    assert seen.types == ["CREATE_TENANT"]


def test_append_inside_another_transaction_publishes_only_after_commit(
    store: SqlDatastore,
) -> None:
    seen = Recorder()
    store.events.add_listener(seen)
    event = EscEvent.success(EventType.VM_ALIVE, "VM_Alive event received, VM ID: [x]")
    with Session(store.engine) as session, session.begin():
        logged = store.events.append(session, [event, event])
        assert [e.id for e in logged] == [1, 2]
        assert seen.batches == []  # not yet committed
    assert seen.batches == [list(logged)]
    with pytest.raises(RuntimeError), Session(store.engine) as session, session.begin():
        store.events.append(session, [event])
        raise RuntimeError("the step failed")
    assert len(seen.batches) == 1 and store.events.last_id() == 2
    assert [e.id for e in store.events.emit([event])] == [3]  # no gap after the rollback


def test_event_times_strictly_increase_under_a_frozen_clock(store_url: str) -> None:
    frozen = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    store = SqlDatastore.open(url=store_url, clock=lambda: frozen)
    try:
        event = EscEvent.success(EventType.VM_ALIVE, "alive")
        store.events.emit([event, event])
        store.events.emit([event])
        times = [e.event_time for e in store.events.read()]
        step = timedelta(milliseconds=1)
        assert times == [frozen, frozen + step, frozen + 2 * step]
        # replay by time: startTime is inclusive, stopTime too
        assert [e.id for e in store.events.read(start=frozen + step)] == [2, 3]
        assert [e.id for e in store.events.read(start=frozen, stop=frozen + step)] == [1, 2]
    finally:
        store.close()


def test_prune_by_count_and_age_keeps_ids_going(store_url: str) -> None:
    now = [datetime(2024, 1, 1, tzinfo=UTC)]
    store = SqlDatastore.open(url=store_url, clock=lambda: now[0])
    try:
        event = EscEvent.success(EventType.VM_ALIVE, "alive")
        for _ in range(5):
            store.events.emit([event])
            now[0] += timedelta(hours=1)
        assert store.events.prune(max_count=3) == 2
        assert [e.id for e in store.events.read()] == [3, 4, 5]
        assert store.events.first_event_time() == datetime(2024, 1, 1, 2, tzinfo=UTC)
        assert store.events.prune(max_age=timedelta(minutes=90)) == 2  # now = 05:00
        assert [e.id for e in store.events.read()] == [5]
        assert store.events.prune(max_count=1) == 0
        assert [e.id for e in store.events.emit([event])] == [6]
    finally:
        store.close()


def test_the_log_survives_a_restart(tmp_path: Path) -> None:
    first = SqlDatastore.open(data_dir=tmp_path)
    first.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a")))
    first.close()
    again = SqlDatastore.open(data_dir=tmp_path)
    try:
        assert again.events.last_id() == 1
        again.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("b")))
        assert [e.event_type for e in again.events.read()] == ["CREATE_TENANT"] * 2
        assert [e.id for e in again.events.read()] == [1, 2]
    finally:
        again.close()


def test_a_failing_listener_does_not_break_the_commit(store: SqlDatastore) -> None:
    def broken(events: Sequence[LoggedEvent]) -> None:
        raise ValueError("listener bug")

    seen = Recorder()
    store.events.add_listener(broken)
    store.events.add_listener(seen)
    store.edit_config(target=Datastore.RUNNING, config=config_of(_tenant("a")))
    assert seen.types == ["CREATE_TENANT"]
    assert isinstance(store.events, EventLog)


def test_our_own_notification_is_logged_and_read_back_like_an_esc_event(
    store: SqlDatastore,
) -> None:
    notice = stale_copy_removed(
        depname="dep", tenant="name1", depid="d-1", vm_group="Group1", vmid="v-1",
        vmname="dep_Group1_0_v-1", vim_id="CSP-1", hostname="csp-1", power_found="stopped",
        placed_on="CSP-2", disk_kept=True,
    )  # fmt: skip
    seen = Recorder()
    store.events.add_listener(seen)
    (logged,) = store.events.emit([notice])
    assert seen.types == ["eo:stale-copy-removed"]
    (read,) = store.events.read(after_id=logged.id - 1)
    assert read.event_type == "eo:stale-copy-removed"
    assert parse_stale_copy_removed(etree.fromstring(read.payload)) == notice
