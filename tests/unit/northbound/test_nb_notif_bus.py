"""The live event bus and the create-subscription checks, without sockets or a database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from esc_orch.model.errors import RpcError
from esc_orch.model.events import EscEvent, EventType, LoggedEvent, esc_event_xml
from esc_orch.model.schema import NOTIF_NS
from esc_orch.northbound.notif_bus import EventBus, EventListener, Notification, Subscriber
from esc_orch.northbound.notifications import Stream, parse_subscription, selects

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _event(i: int, tenant: str = "t") -> LoggedEvent:
    esc = EscEvent.success(EventType.CREATE_TENANT, "ok", tenant=tenant)
    return LoggedEvent(i, T0 + timedelta(milliseconds=i), "CREATE_TENANT", esc_event_xml(esc))


class FakeLog:
    def __init__(self, events: Sequence[LoggedEvent] = ()) -> None:
        self.events = list(events)
        self.listeners: list[EventListener] = []

    def add_listener(self, listener: EventListener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        self.listeners.remove(listener)

    def last_id(self) -> int:
        return max((e.id for e in self.events), default=0)

    def read(
        self,
        *,
        after_id: int = 0,
        start: datetime | None = None,
        stop: datetime | None = None,
        limit: int = 500,
    ) -> list[LoggedEvent]:
        return [e for e in self.events if e.id > after_id][:limit]

    def first_event_time(self) -> datetime:
        return T0


async def _drain(sub: Subscriber) -> list[int]:
    out = []
    while len(sub):
        got = await sub.get()
        assert got is not None
        out.append(got.id)
    return out


async def test_bus_delivers_in_id_order_and_fills_gaps_from_the_log() -> None:
    log = FakeLog([_event(1)])
    bus = EventBus(source=log, gap_timeout=0.05)
    await bus.start()
    sub = Subscriber(capacity=100, on_overflow=lambda reason: None)
    bus.subscribe(sub)
    log.events += [_event(2), _event(3), _event(4)]
    bus.receive([_event(3)])  # 2 is late
    bus.receive([_event(1)])  # already known before start: ignored
    assert await _drain(sub) == []
    bus.receive([_event(2)])
    assert await _drain(sub) == [2, 3]
    bus.receive([_event(5)])  # 4 is never published: read from the log after the timeout
    log.events.append(_event(5))
    await asyncio.sleep(0.2)
    assert await _drain(sub) == [4, 5]
    assert bus.last_delivered == 5
    await bus.stop()


async def test_overflow_gives_up_on_one_subscriber_only() -> None:
    bus = EventBus(source=FakeLog())
    await bus.start()
    reasons: list[str] = []
    slow = Subscriber(capacity=2, on_overflow=reasons.append)
    fast = Subscriber(capacity=100, on_overflow=reasons.append)
    bus.subscribe(slow)
    bus.subscribe(fast)
    bus.receive([_event(i) for i in range(1, 6)])
    assert slow.overflowed and len(slow) == 0
    assert reasons == ["notification queue overflow (2 undelivered)"]
    assert await _drain(fast) == [1, 2, 3, 4, 5]
    await bus.stop()


async def test_subscriber_get_honours_its_deadline() -> None:
    sub = Subscriber(capacity=2, on_overflow=lambda reason: None)
    loop = asyncio.get_running_loop()
    assert await sub.get(deadline=loop.time() + 0.01) is None
    sub.offer(Notification(_event(1)))
    assert (await sub.get(deadline=loop.time() - 1)) is not None  # queued wins over deadline


def _op(body: str) -> etree._Element:
    return etree.fromstring(f'<create-subscription xmlns="{NOTIF_NS}">{body}</create-subscription>')


def test_parse_subscription_defaults_and_errors() -> None:
    now = T0 + timedelta(hours=1)
    request = parse_subscription(_op(""), now=now)
    assert request.stream is Stream.NETCONF and request.start is None
    request = parse_subscription(
        _op("<stream>escEvent</stream><startTime>2024-01-01T00:00:00Z</startTime>"), now=now
    )
    assert request.stream is Stream.ESC_EVENT and request.start == T0
    cases = {
        "<stream>other</stream>": ("invalid-value", "stream"),
        "<stopTime>2024-01-01T00:00:00Z</stopTime>": ("missing-element", "startTime"),
        "<startTime>2030-01-01T00:00:00Z</startTime>": ("bad-element", "startTime"),
        "<startTime>yesterday</startTime>": ("bad-element", "startTime"),
        "<startTime>2024-01-01T00:30:00Z</startTime><stopTime>2024-01-01T00:00:00Z</stopTime>": (
            "bad-element",
            "stopTime",
        ),
        "<bogus/>": ("unknown-element", "bogus"),
    }
    for body, (tag, element) in cases.items():
        with pytest.raises(RpcError) as caught:
            parse_subscription(_op(body), now=now)
        assert (caught.value.tag, caught.value.info.get("bad-element")) == (tag, element), body


def test_filters_match_the_escevent_content() -> None:
    ns = "http://www.cisco.com/esc/esc"
    now = T0 + timedelta(hours=1)
    mine = Notification(_event(1, tenant="mine"))
    other = Notification(_event(2, tenant="other"))
    subtree = parse_subscription(
        _op(f'<filter><escEvent xmlns="{ns}"><tenant>mine</tenant></escEvent></filter>'),
        now=now,
    )
    xpath = parse_subscription(
        _op('<filter type="xpath" select="/escEvent[event/type=\'CREATE_TENANT\']"/>'), now=now
    )
    assert selects(subtree.filter, mine) and not selects(subtree.filter, other)
    assert selects(xpath.filter, mine) and selects(xpath.filter, other)
    assert selects(None, other)
