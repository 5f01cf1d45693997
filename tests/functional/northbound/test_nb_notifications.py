"""escEvent notifications end to end: real SSH, ncclient, the real SqlDatastore and its log."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from esc_orch.model.events import (
    NETMOD_NOTIF_NS,
    EscEvent,
    EventType,
    format_event_time,
    parse_event_time,
)
from esc_orch.model.schema import ESC_NS, NOTIF_NS
from esc_orch.model.validate import validate_notification
from esc_orch.northbound.backend import Datastore
from esc_orch.northbound.framing import encode_eom
from esc_orch.northbound.session import NetconfCapability
from nbsupport.notif_server import SqlServerThread
from nbsupport.server import PASSWORD, USER, nc_connect

pytestmark = pytest.mark.functional

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
TENANT = (
    f'<config><esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>{{}}</name></tenant>'
    "</tenants></esc_datamodel></config>"
)
DELETE_TENANT = (
    f'<config><esc_datamodel xmlns="{ESC_NS}" xmlns:nc="{NC}"><tenants>'
    '<tenant nc:operation="delete"><name>{}</name></tenant></tenants></esc_datamodel></config>'
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SqlServerThread]:
    srv = SqlServerThread(data_dir=tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


def take(m: Any, count: int, *, timeout: float = 10.0) -> list[etree._Element]:
    """``count`` notifications (each validated if it is an escEvent), bounded in time."""
    out: list[etree._Element] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"got {len(out)} of {count} notifications"
        notification = m.take_notification(block=True, timeout=left)
        if notification is None:
            continue
        root = notification.notification_ele
        if root.find(f"{{{ESC_NS}}}escEvent") is not None:
            assert validate_notification(root) == [], notification.notification_xml
        out.append(root)
    return out


def nothing_more(m: Any, wait: float = 0.3) -> None:
    extra = m.take_notification(block=True, timeout=wait)
    assert extra is None, extra.notification_xml


def kind(root: etree._Element) -> str:
    """The event type, or the RFC 5277 marker name."""
    event_type = root.findtext(f"{{{ESC_NS}}}escEvent/{{{ESC_NS}}}event/{{{ESC_NS}}}type")
    return event_type or etree.QName(root[1]).localname


def tenant_of(root: etree._Element) -> str | None:
    return root.findtext(f"{{{ESC_NS}}}escEvent/{{{ESC_NS}}}tenant")


def event_time(root: etree._Element) -> datetime:
    return parse_event_time(root.findtext(f"{{{NOTIF_NS}}}eventTime") or "")


def create_tenants(m: Any, *names: str) -> None:
    for name in names:
        m.edit_config(target="running", config=TENANT.format(name))


def test_capabilities_and_stream_list(server: SqlServerThread) -> None:
    with nc_connect(server.port) as m:
        assert {NetconfCapability.NOTIFICATION, NetconfCapability.INTERLEAVE} <= set(
            m.server_capabilities
        )
        reply = m.get(filter=("subtree", f'<netconf xmlns="{NETMOD_NOTIF_NS}"/>'))
        streams = reply.data_ele.findall(f".//{{{NETMOD_NOTIF_NS}}}stream")
        names = [s.findtext(f"{{{NETMOD_NOTIF_NS}}}name") for s in streams]
        assert names == ["NETCONF", "escEvent"]
        for stream in streams:
            assert stream.findtext(f"{{{NETMOD_NOTIF_NS}}}replaySupport") == "true"
            parse_event_time(stream.findtext(f"{{{NETMOD_NOTIF_NS}}}replayLogCreationTime") or "")


def test_subscribe_then_events_arrive_in_order_while_rpcs_interleave(
    server: SqlServerThread,
) -> None:
    with nc_connect(server.port) as m:
        m.create_subscription(stream_name="escEvent")
        create_tenants(m, "a", "b", "c")  # on the subscribed session itself (:interleave)
        got = take(m, 3)
        assert [tenant_of(n) for n in got] == ["a", "b", "c"]
        assert [kind(n) for n in got] == ["CREATE_TENANT"] * 3
        times = [event_time(n) for n in got]
        assert times == sorted(set(times))
        assert got[0][0].text is not None and got[0][0].text.endswith("+00:00")
        m.edit_config(target="running", config=DELETE_TENANT.format("a"))
        assert [kind(n) for n in take(m, 1)] == ["DELETE_TENANT"]
        nothing_more(m, 0.1)


def test_two_subscribers_receive_everything(server: SqlServerThread) -> None:
    with nc_connect(server.port) as one, nc_connect(server.port) as two:
        one.create_subscription(stream_name="escEvent")
        two.create_subscription()  # the default NETCONF stream carries the escEvents too
        names = [f"t{i}" for i in range(20)]
        assert server.store is not None
        for name in names:  # from a thread that is not a NETCONF session
            config = etree.fromstring(TENANT.format(name))
            server.store.edit_config(target=Datastore.RUNNING, config=config)
        for m in (one, two):
            assert [tenant_of(n) for n in take(m, 20)] == names
            nothing_more(m, 0.1)


def test_reconnect_with_start_time_misses_and_doubles_nothing(server: SqlServerThread) -> None:
    with nc_connect(server.port) as m:
        m.create_subscription(stream_name="escEvent")
        create_tenants(m, "a", "b")
        seen = take(m, 2)
    last = event_time(seen[-1])
    with nc_connect(server.port) as other:
        create_tenants(other, "c", "d")  # while nobody listens
    server.restart()  # the daemon restarts between the two: the log is on disk
    with nc_connect(server.port) as m:
        create_tenants(m, "e")
        resume = format_event_time(last + timedelta(milliseconds=1))
        m.create_subscription(stream_name="escEvent", start_time=resume)
        create_tenants(m, "f")
        got = take(m, 4)
        assert [tenant_of(n) or kind(n) for n in got] == ["c", "d", "e", "replayComplete"]
        assert [tenant_of(n) for n in take(m, 1)] == ["f"]
        nothing_more(m)
        # The whole history, replayed from the start, has every event exactly once.
    with nc_connect(server.port) as m:
        m.create_subscription(start_time=format_event_time(event_time(seen[0])))
        got = take(m, 7)
        assert [tenant_of(n) or kind(n) for n in got] == [*"abcdef", "replayComplete"]


def test_replay_races_live_events_without_gap_or_double(server: SqlServerThread) -> None:
    assert server.store is not None
    store = server.store
    event = EscEvent.success(EventType.VM_ALIVE, "alive")
    start = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(50):
        store.events.emit([event] * 10)
    stop_writing = threading.Event()

    def writer() -> None:
        while not stop_writing.is_set() and store.events.last_id() < 1500:
            store.events.emit([event] * 5)

    thread = threading.Thread(target=writer)
    with nc_connect(server.port) as m:
        thread.start()
        try:
            m.create_subscription(stream_name="escEvent", start_time=format_event_time(start))
            time.sleep(0.3)
        finally:
            stop_writing.set()
            thread.join(timeout=10)
        total = store.events.last_id()
        got = take(m, total + 1, timeout=20)
    markers = [i for i, n in enumerate(got) if kind(n) == "replayComplete"]
    assert len(markers) == 1
    events = [n for n in got if kind(n) == "VM_ALIVE"]
    times = [event_time(n) for n in events]
    assert len(events) == total and times == sorted(set(times))


def test_filters_select_exactly_what_they_should(server: SqlServerThread) -> None:
    subtree = (
        "subtree",
        f'<escEvent xmlns="{ESC_NS}"><event><type>DELETE_TENANT</type></event></escEvent>',
    )
    with nc_connect(server.port) as by_type, nc_connect(server.port) as by_xpath:
        by_type.create_subscription(stream_name="escEvent", filter=subtree)
        by_xpath.create_subscription(filter=("xpath", "/escEvent[tenant='keep' or tenant='x']"))
        create_tenants(by_type, "keep", "drop")
        by_type.edit_config(target="running", config=DELETE_TENANT.format("drop"))
        assert [(kind(n), tenant_of(n)) for n in take(by_type, 1)] == [("DELETE_TENANT", "drop")]
        assert [(kind(n), tenant_of(n)) for n in take(by_xpath, 1)] == [("CREATE_TENANT", "keep")]
        nothing_more(by_type)
        nothing_more(by_xpath, 0.05)


def _rpc_error(fn: Any) -> tuple[str, str | None]:
    with pytest.raises(RPCError) as caught:
        fn()
    error = caught.value.xml
    return str(caught.value.tag), error.findtext(f".//{{{NC}}}bad-element")


def test_refusals(server: SqlServerThread) -> None:
    future = format_event_time(datetime.now(UTC) + timedelta(hours=1))
    past = format_event_time(datetime.now(UTC) - timedelta(hours=1))
    with nc_connect(server.port) as m:
        assert _rpc_error(lambda: m.create_subscription(stream_name="nope"))[0] == "invalid-value"
        assert _rpc_error(lambda: m.create_subscription(start_time=future)) == (
            "bad-element",
            "startTime",
        )
        assert _rpc_error(lambda: m.create_subscription(start_time=future.replace("T", "T0"))) == (
            "bad-element",
            "startTime",
        )
        assert _rpc_error(
            lambda: m.create_subscription(
                start_time=past, stop_time=format_event_time(datetime(2000, 1, 1, tzinfo=UTC))
            )
        ) == ("bad-element", "stopTime")
        assert (
            _rpc_error(lambda: m.create_subscription(filter=("xpath", "/escEvent[[")))[0]
            == "invalid-value"
        )
        m.create_subscription(stream_name="escEvent")
        assert _rpc_error(lambda: m.create_subscription(stream_name="escEvent"))[0] == "in-use"
        create_tenants(m, "still-subscribed")
        assert [tenant_of(n) for n in take(m, 1)] == ["still-subscribed"]


def test_stop_time_ends_with_notification_complete(server: SqlServerThread) -> None:
    with nc_connect(server.port) as m:
        create_tenants(m, "before")
        start = datetime.now(UTC) - timedelta(seconds=5)
        stop = datetime.now(UTC) + timedelta(seconds=0.6)
        m.create_subscription(
            stream_name="escEvent",
            start_time=format_event_time(start),
            stop_time=format_event_time(stop),
        )
        create_tenants(m, "during")
        got = take(m, 4, timeout=5)
        assert [tenant_of(n) or kind(n) for n in got] == [
            "before",
            "replayComplete",
            "during",
            "notificationComplete",
        ]
        create_tenants(m, "after")
        nothing_more(m)
        m.create_subscription(stream_name="escEvent")  # the old one is over: allowed again
        create_tenants(m, "again")
        assert [tenant_of(n) for n in take(m, 1)] == ["again"]


class _StuckClient:
    """A subscriber that stops reading (tiny SSH window) once its subscription is accepted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.subscribed = threading.Event()
        self.closed = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> _StuckClient:
        self._thread.start()
        assert self.subscribed.wait(timeout=10), "stuck client did not subscribe"
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        received = bytearray()
        outer = self

        class Client(asyncssh.SSHClientSession[bytes]):
            def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
                received.extend(data)
                if b"<ok/>" in received and not outer.subscribed.is_set():
                    outer.subscribed.set()
                    chan.pause_reading()  # and never read again

            def connection_lost(self, exc: Exception | None) -> None:
                outer.closed.set()

        async with asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=USER,
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
        ) as conn:
            chan, _ = await conn.create_session(
                Client, subsystem="netconf", encoding=None, window=2048, max_pktsize=1024
            )
            hello = f'<hello xmlns="{NC}"><capabilities><capability>{NetconfCapability.BASE_10}'
            chan.write(encode_eom(f"{hello}</capability></capabilities></hello>".encode()))
            chan.write(
                encode_eom(
                    f'<rpc xmlns="{NC}" message-id="1"><create-subscription'
                    f' xmlns="{NOTIF_NS}"/></rpc>'.encode()
                )
            )
            await self._stop.wait()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


def test_a_subscriber_that_stops_reading_does_not_slow_the_others(tmp_path: Path) -> None:
    srv = SqlServerThread(data_dir=tmp_path / "data", queue_size=300).start()
    stuck = _StuckClient(srv.port)
    try:
        with nc_connect(srv.port) as reader:
            reader.create_subscription(stream_name="escEvent")
            stuck.start()
            assert srv.session_count() == 2
            assert srv.store is not None
            event = EscEvent.success(EventType.VM_ALIVE, "alive")
            began = time.monotonic()
            for _ in range(100):
                srv.store.events.emit([event] * 10)
            got = take(reader, 1000, timeout=20)
            elapsed = time.monotonic() - began
            assert len(got) == 1000 and elapsed < 15, elapsed
            deadline = time.monotonic() + 5
            while srv.session_count() != 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert srv.session_count() == 1
            srv.store.events.emit([event])
            assert len(take(reader, 1)) == 1  # the reader goes on
    finally:
        stuck.close()
        srv.stop()
