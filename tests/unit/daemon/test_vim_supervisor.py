"""The VIM supervisor: connector checks, state, VIM_CONNECTION_STATE events, acceptance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.daemon.connectors import ConnectorPool, connector_config
from esc_orch.daemon.vim_supervisor import (
    ConnectionStatus,
    VimSupervisor,
    connectors_of,
    last_reported,
)
from esc_orch.model.convert import unit_model
from esc_orch.model.errors import RpcErrors
from esc_orch.model.events import EscEvent, EventStatus, EventType
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.vim.fake import FakeConnector, FakeHost
from esc_orch.vim.types import ConnectorConfig
from payloads import ESC_NS, EXAMPLES, config_of, dump

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Hosts:
    """Fake hosts by connector URL, so tests can take one down."""

    def __init__(self) -> None:
        self.by_url: dict[str, FakeHost] = {}

    def factory(self, config: ConnectorConfig) -> FakeConnector:
        url = config.prop("url") or config.id
        host = self.by_url.setdefault(url, FakeHost(name=url.rsplit(":", 1)[-1]))
        fake = ConnectorConfig(
            id=config.id,
            type="FAKE",
            properties={**config.properties, "expected_password": "change-me"},
            credentials=config.credentials,
        )
        return FakeConnector(config=fake, host=host)


@pytest.fixture
def store(tmp_path: Path) -> SqlDatastore:
    return SqlDatastore.open(data_dir=tmp_path)


def _supervisor(hosts: Hosts, events: list[EscEvent]) -> VimSupervisor:
    return VimSupervisor(emit=events.extend, clock=lambda: NOW, factory=hosts.factory)


def test_connector_config_takes_url_and_password_from_the_configuration() -> None:
    tree = etree.parse(str(EXAMPLES / "vim_connector_cluster.xml")).getroot()
    entry = tree.find(f".//{{{ESC_NS}}}vim_connector")
    assert entry is not None
    config = connector_config(unit_model("vim_connector", entry))
    assert config.id == "CSP-1-cluster" and config.type == "CSP"
    assert config.prop("url") == "http://127.0.0.1:8441"
    assert config.prop("cluster_name") == "Cluster_Test"
    assert config.credentials is not None and config.credentials.user == "admin"
    assert config.credentials.password == "change-me"


async def test_created_connectors_are_checked_and_reported(store: SqlDatastore) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    for cid in ("CSP-1", "CSP-2", "CSP-3"):
        await supervisor.check(cid)
    assert [s.status for s in supervisor.states()] == [ConnectionStatus.SUCCESSFUL] * 3
    assert [(e.event.type, e.status, e.event.details) for e in events] == [
        (EventType.VIM_CONNECTION_STATE, EventStatus.SUCCESS, cid)
        for cid in ("CSP-1", "CSP-2", "CSP-3")
    ]
    opdata = supervisor.opdata()
    assert (
        opdata.xpath("//e:status/text()", namespaces={"e": ESC_NS}) == ["CONNECTION_SUCCESSFUL"] * 3
    )


async def test_only_state_changes_are_reported(store: SqlDatastore) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    await supervisor.check("CSP-1")
    await supervisor.check("CSP-1")
    assert len(events) == 1
    hosts.by_url["http://127.0.0.1:8441"].down = True
    state = await supervisor.check("CSP-1")
    assert state is not None and state.status is ConnectionStatus.FAILED
    assert "unreachable" in (state.message or "")
    assert [e.status for e in events] == [EventStatus.SUCCESS, EventStatus.FAILURE]
    assert events[-1].status_message is not None
    assert events[-1].status_message.startswith("Connection to VIM connector [CSP-1] failed")


async def test_wrong_password_is_a_failed_connection(store: SqlDatastore) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    payload = (EXAMPLES / "vim_connector_cluster.xml").read_text().replace("change-me", "wrong")
    store.edit_config(target=Datastore.RUNNING, config=config_of(payload))
    state = await supervisor.check("CSP-1-cluster")
    assert state is not None and state.status is ConnectionStatus.FAILED
    assert "credentials refused" in (state.message or "")
    assert "wrong" not in (state.message or "")


async def test_placing_vms_on_a_failed_connector_is_refused(store: SqlDatastore) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    store.add_acceptance_check(supervisor.acceptance_errors)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml"))
    await supervisor.check("CSP-1")
    hosts.by_url["http://127.0.0.1:8441"].down = True  # CSP-1 dies (seed scenario 2)
    await supervisor.check("CSP-1")
    # moving away from the dead host is accepted ...
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_2.xml"))
    # ... moving onto it is refused, with nothing written
    before = dump(store)
    with pytest.raises(RpcErrors) as info:
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml"))
    error = info.value.errors[0]
    assert (error.tag, error.app_tag) == ("operation-failed", "vim-unreachable")
    assert error.path is not None and error.path.endswith("esc:locator/esc:vim_id")
    assert "esc_nc_cli recheck-vim CSP-1" in error.message  # the way out, if the host is back
    assert dump(store) == before


async def test_deleted_connectors_leave_the_state(store: SqlDatastore) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    delete = (
        f'<esc_system_config xmlns="{ESC_NS}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<vim_connectors><vim_connector nc:operation="delete"><id>CSP-3</id></vim_connector>'
        "</vim_connectors></esc_system_config>"
    )
    store.edit_config(target=Datastore.RUNNING, config=config_of(delete))
    assert [s.id for s in supervisor.states()] == ["CSP-1", "CSP-2"]


async def test_a_group_placed_by_default_on_a_failed_connector_is_refused(
    store: SqlDatastore,
) -> None:
    hosts, events = Hosts(), []
    supervisor = _supervisor(hosts, events)
    store.add_listener(supervisor.on_commit)
    store.add_acceptance_check(supervisor.acceptance_errors)
    marked = (EXAMPLES / "vim_connectors.xml").read_text()
    marked = marked.replace(
        "<property><name>url</name><value>http://127.0.0.1:8441</value></property>",
        "<property><name>url</name><value>http://127.0.0.1:8441</value></property>"
        "<property><name>default</name><value>true</value></property>",
    )
    store.edit_config(target=Datastore.RUNNING, config=config_of(marked))
    await supervisor.check("CSP-1")
    hosts.by_url["http://127.0.0.1:8441"].down = True
    await supervisor.check("CSP-1")
    unplaced = (
        (EXAMPLES / "deploy_csp_1.xml")
        .read_text()
        .replace("<vim_id>CSP-1</vim_id>", "")
        .replace("<vim_project>CSP-1</vim_project>", "")
    )
    before = dump(store)
    with pytest.raises(RpcErrors) as info:
        store.edit_config(target=Datastore.RUNNING, config=config_of(unplaced))
    error = info.value.errors[0]
    assert (error.tag, error.app_tag) == ("operation-failed", "vim-unreachable")
    assert error.path is not None and error.path.endswith(
        "esc:vm_group[esc:name='Group1']/esc:locator"
    )
    assert "CSP-1" in error.message
    assert dump(store) == before


async def test_checks_use_the_shared_pool_and_a_recheck_reports_a_host_back_at_once(
    store: SqlDatastore,
) -> None:
    hosts, events = Hosts(), []
    pool = ConnectorPool(factory=hosts.factory)
    supervisor = VimSupervisor(emit=events.extend, clock=lambda: NOW, pool=pool, interval=3600)
    store.add_listener(supervisor.on_commit)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    shared = pool("CSP-1")  # the connector the reactor is given: the one checked
    hosts.by_url["http://127.0.0.1:8441"].down = True
    down = await supervisor.check("CSP-1")
    assert down is not None and down.status is ConnectionStatus.FAILED
    hosts.by_url["http://127.0.0.1:8441"].down = False
    up = await supervisor.recheck("CSP-1")  # on demand, not at the next interval
    assert up is not None and up.status is ConnectionStatus.SUCCESSFUL
    assert pool("CSP-1") is shared
    assert [e.status for e in events] == [EventStatus.FAILURE, EventStatus.SUCCESS]
    await pool.close()


async def test_a_restart_with_nothing_changed_reports_no_connection_state(
    store: SqlDatastore,
) -> None:
    """Issue 14, item 9: every restart said "is up" for every connector, though nothing
    changed. The event log is what clients were told: only a change since is reported."""
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    hosts, first = Hosts(), []
    supervisor = _supervisor(hosts, first)
    supervisor.load(connectors_of(store.running_units("vim_connector").values()))
    for cid in ("CSP-1", "CSP-2", "CSP-3"):
        await supervisor.check(cid)
    store.events.emit(first)  # what the daemon logs and clients receive
    assert len(first) == 3

    # the restart: CSP-2 went down meanwhile, the others are still up
    hosts.by_url["http://127.0.0.1:8442"].down = True
    told = last_reported(store.events.newest_of_type(EventType.VIM_CONNECTION_STATE))
    assert told == dict.fromkeys(("CSP-1", "CSP-2", "CSP-3"), ConnectionStatus.SUCCESSFUL)
    again: list[EscEvent] = []
    restarted = _supervisor(hosts, again)
    restarted.load(connectors_of(store.running_units("vim_connector").values()), reported=told)
    for cid in ("CSP-1", "CSP-2", "CSP-3"):
        await restarted.check(cid)
    assert [(e.status, e.event.details) for e in again] == [(EventStatus.FAILURE, "CSP-2")]
    assert [s.status for s in restarted.states()] == [
        ConnectionStatus.SUCCESSFUL,
        ConnectionStatus.FAILED,
        ConnectionStatus.SUCCESSFUL,
    ]


@contextlib.asynccontextmanager
async def _probing(
    store: SqlDatastore, hosts: Hosts, emit: Callable[[list[EscEvent]], None]
) -> AsyncIterator[tuple[VimSupervisor, asyncio.Event]]:
    """A supervisor running on the seed's three connectors: full checks an hour apart, a down
    host probed every 10 ms; yields it and the event its ``on_up`` sets."""
    supervisor = VimSupervisor(
        emit=emit, clock=lambda: NOW, factory=hosts.factory, interval=3600,
        failed_interval=0.01,
    )  # fmt: skip
    back = asyncio.Event()
    supervisor.on_up = lambda connector_id: back.set()
    store.add_listener(supervisor.on_commit)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor, back
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await supervisor.pool.close()


async def test_a_host_found_down_by_a_recheck_is_probed_until_back_not_at_the_next_interval(
    store: SqlDatastore,
) -> None:
    """The loop sleeps for a whole interval (an hour); a recheck on demand finds CSP-1 down:
    from then on the loop probes it every failed_interval, so its return (and the removal of
    a stale copy it holds) is seen at once. Before, the loop slept on to the next interval."""
    hosts, events = Hosts(), []
    checked = asyncio.Event()

    def emit(batch: list[EscEvent]) -> None:
        events.extend(batch)
        if len(events) >= 3:  # the first checks of the three connectors
            checked.set()

    async with _probing(store, hosts, emit) as (supervisor, back):
        await asyncio.wait_for(checked.wait(), timeout=5)
        hosts.by_url["http://127.0.0.1:8441"].down = True
        down = await supervisor.recheck("CSP-1")
        assert down is not None and down.status is ConnectionStatus.FAILED
        hosts.by_url["http://127.0.0.1:8441"].down = False
        await asyncio.wait_for(back.wait(), timeout=5)  # seen by the loop's own probe


async def test_a_host_a_run_found_silent_is_checked_now_and_probed_until_back(
    store: SqlDatastore,
) -> None:
    """Between full checks (an hour here) a run finds CSP-1 silent and says so (``suspect``):
    the supervisor checks it at once, finds it down, probes it every failed_interval, and
    reports its return — the lifecycle then removes a stale copy it holds."""
    hosts, events = Hosts(), []
    checked, failed = asyncio.Event(), asyncio.Event()

    def emit(batch: list[EscEvent]) -> None:
        events.extend(batch)
        if len(events) >= 3:
            checked.set()
        if any(e.status is EventStatus.FAILURE for e in batch):
            failed.set()

    async with _probing(store, hosts, emit) as (supervisor, back):
        await asyncio.wait_for(checked.wait(), timeout=5)
        hosts.by_url["http://127.0.0.1:8441"].down = True
        supervisor.suspect("CSP-1")
        supervisor.suspect("CSP-1")  # once is enough
        await asyncio.wait_for(failed.wait(), timeout=5)  # checked now, not in an hour
        assert [e.status for e in events[3:]] == [EventStatus.FAILURE]
        hosts.by_url["http://127.0.0.1:8441"].down = False
        await asyncio.wait_for(back.wait(), timeout=5)
