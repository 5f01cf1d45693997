"""RFC 5277 notifications: ``create-subscription``, replay from the log, the stream list.

A client that misses an escEvent cannot know whether its VNF moved, so a subscription
either receives every event of its stream (filtered as it asked) in order, or its session is
closed and the client can replay from the log with ``startTime``. A subscription:

1. registers with the live :class:`~esc_orch.northbound.notif_bus.EventBus` first, so
   every event committed from then on is queued for it;
2. with ``startTime``, replays the log page by page (worker threads), then sends
   ``replayComplete``;
3. drains its queue, skipping ids already replayed: no event is missed or doubled, even with
   equal timestamps, because order and identity are the log's ids;
4. with ``stopTime``, ends with ``notificationComplete`` once that time has passed.

Streams: ``escEvent`` and ``NETCONF`` (the RFC 5277 default stream, which carries every
notification this server sends: the same escEvents). Both also carry the notifications of our
own module (``eo:stale-copy-removed``, :mod:`esc_orch.model.eo_events`), from the same log.
Both support replay. A session has at most one subscription at a time; :interleave lets it
keep sending RPCs meanwhile.
Notifications are written through the session's single writer (``SessionInfo.send``).
"""

from __future__ import annotations

import asyncio
import logging
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from esc_orch import metrics
from esc_orch.model.clock import Clock, utc_now
from esc_orch.model.errors import NC_BASE_NS, ErrorTag, ErrorType, RpcError
from esc_orch.model.events import (
    NETMOD_NOTIF_NS,
    EscEvent,
    EventInfo,
    EventType,
    esc_event_element,
    format_event_time,
    notification_complete_xml,
    parse_event_time,
    replay_complete_xml,
)
from esc_orch.model.schema import NOTIF_NS
from esc_orch.northbound.core import NetconfCore, SessionInfo
from esc_orch.northbound.filters import apply_filter
from esc_orch.northbound.notif_bus import EventBus, EventSource, Notification, Subscriber
from esc_orch.northbound.rpc import RpcContext
from esc_orch.northbound.session import NetconfCapability, OkReply, Reply

log = logging.getLogger(__name__)


class Stream(StrEnum):
    NETCONF = "NETCONF"
    ESC_EVENT = "escEvent"


STREAM_DESCRIPTIONS = {
    Stream.NETCONF: "Default NETCONF event stream: every notification of this server",
    Stream.ESC_EVENT: (
        "ESC lifecycle events (escEvent of http://www.cisco.com/esc/esc) and esc-orch's own"
        " notifications (urn:esc-orch:yang:esc-orch)"
    ),
}

NOTIFICATION_CAPABILITIES = (NetconfCapability.NOTIFICATION, NetconfCapability.INTERLEAVE)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationLimits:
    #: Notifications queued per subscription before its session is closed.
    queue_size: int = 10_000
    #: Events read from the log per replay step.
    replay_page: int = 500
    #: Seconds the bus waits for a late publisher before reading a gap from the log.
    gap_timeout: float = 0.5


# Upper bounds of one coalesced write (several whole frames in one SSH write).
_BATCH_BYTES = 64 * 1024
_BATCH_ITEMS = 256


# ------------------------------------------------------------------------ the request


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    stream: Stream
    filter: etree._Element | None
    start: datetime | None
    stop: datetime | None


def _bad(tag: ErrorTag, message: str, element: str) -> RpcError:
    return RpcError(
        tag=tag, type=ErrorType.PROTOCOL, message=message, info={"bad-element": element}
    )


def _time(element: etree._Element) -> datetime:
    name = etree.QName(element).localname
    try:
        return parse_event_time(element.text or "")
    except ValueError:
        raise _bad(
            ErrorTag.BAD_ELEMENT, f"{name} must be an RFC 3339 date-and-time with offset", name
        ) from None


_PROBE = etree.Element(f"{{{NC_BASE_NS}}}data")
_PROBE.append(esc_event_element(EscEvent(event=EventInfo(type=EventType.VM_ALIVE))))


def parse_subscription(op: etree._Element, *, now: datetime) -> SubscriptionRequest:
    """Check a ``<create-subscription>`` element (RFC 5277 §2.1.1); raise its rpc-error."""
    params: dict[str, etree._Element] = {}
    for child in op:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        allowed_ns = (NOTIF_NS, None, NC_BASE_NS) if qname.localname == "filter" else (NOTIF_NS,)
        if qname.namespace not in allowed_ns or qname.localname not in {
            "stream",
            "filter",
            "startTime",
            "stopTime",
        }:
            raise _bad(
                ErrorTag.UNKNOWN_ELEMENT,
                f"unexpected parameter {qname.localname!r} in create-subscription",
                qname.localname,
            )
        params[qname.localname] = child
    stream = Stream.NETCONF
    if "stream" in params:
        name = (params["stream"].text or "").strip()
        try:
            stream = Stream(name)
        except ValueError:
            raise _bad(ErrorTag.INVALID_VALUE, f"no stream named {name!r}", "stream") from None
    start = _time(params["startTime"]) if "startTime" in params else None
    stop = _time(params["stopTime"]) if "stopTime" in params else None
    if stop is not None and start is None:
        raise _bad(ErrorTag.MISSING_ELEMENT, "stopTime needs a startTime", "startTime")
    if start is not None and start > now:
        raise _bad(ErrorTag.BAD_ELEMENT, "startTime is in the future", "startTime")
    if start is not None and stop is not None and stop < start:
        raise _bad(ErrorTag.BAD_ELEMENT, "stopTime is earlier than startTime", "stopTime")
    flt = params.get("filter")
    if flt is not None:
        flt = _detached_filter(flt)
        apply_filter(_PROBE, flt)  # raises the filter's errors now, not per event
    return SubscriptionRequest(stream=stream, filter=flt, start=start, stop=stop)


def _detached_filter(flt: etree._Element) -> etree._Element:
    """A copy of the filter that owns its namespace declarations, without the notification
    namespace as default (unprefixed XPath names then mean the esc namespace, as in get)."""
    nsmap = {k: v for k, v in flt.nsmap.items() if k is not None or v != NOTIF_NS}
    copy = etree.Element(f"{{{NC_BASE_NS}}}filter", nsmap=nsmap)  # type: ignore[arg-type]
    for name, value in flt.attrib.items():
        copy.set(name, value)
    copy.text = flt.text
    for child in flt:
        copy.append(deepcopy(child))
    return copy


def selects(flt: etree._Element | None, notification: Notification) -> bool:
    """True when the subscription filter selects anything of the notification's content."""
    if flt is None:
        return True
    return len(apply_filter(notification.filter_root(), flt)) > 0


# ------------------------------------------------------------------------ one subscription


class Subscription:
    """Replay then live delivery for one session; ends with its session or its stopTime."""

    def __init__(
        self,
        *,
        request: SubscriptionRequest,
        session: SessionInfo,
        bus: EventBus,
        source: EventSource,
        limits: NotificationLimits,
        clock: Clock,
    ) -> None:
        self.request = request
        self.session = session
        self._bus = bus
        self._source = source
        self._limits = limits
        self._clock = clock
        self.subscriber = Subscriber(capacity=limits.queue_size, on_overflow=self._overflow)
        self.task: asyncio.Task[None] | None = None
        self.sent = 0

    def _overflow(self, reason: str) -> None:
        log.warning(
            "closing a session that does not read its notifications",
            extra={"session": self.session.session_id, "reason": reason},
        )
        self.session.terminate(reason)

    def register(self) -> None:
        """Start queueing live events (before the reply, so nothing is missed)."""
        self.session.subscribed = True
        self._bus.subscribe(self.subscriber)

    def start(self) -> None:
        """Start sending (after the ``<ok/>`` reply has been written)."""
        self.task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        self.session.subscribed = False
        self._bus.unsubscribe(self.subscriber)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _send(self, messages: list[bytes]) -> None:
        """Write ``messages`` (each its own frame) with one write: under load a subscriber
        gets many notifications per SSH packet instead of one packet each."""
        assert self.session.send is not None
        if messages:
            await self.session.send(messages)

    async def _run(self) -> None:
        try:
            last = await self._replay() if self.request.start is not None else 0
            await self._live(last)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription failed", extra={"session": self.session.session_id})
            self.session.terminate("notification delivery failed")
        finally:
            self.session.subscribed = False
            self._bus.unsubscribe(self.subscriber)

    async def _replay(self) -> int:
        request = self.request
        last = 0
        while True:
            page = await asyncio.to_thread(
                self._source.read,
                after_id=last,
                start=request.start,
                stop=request.stop,
                limit=self._limits.replay_page,
            )
            batch: list[bytes] = []
            size = 0
            for event in page:
                last = event.id
                notification = Notification(event)
                if selects(request.filter, notification):
                    batch.append(notification.xml)
                    size += len(notification.xml)
                    if size >= _BATCH_BYTES:
                        await self._send(batch)
                        self.sent += len(batch)
                        batch, size = [], 0
            await self._send(batch)
            self.sent += len(batch)
            if len(page) < self._limits.replay_page:
                break
        # Events of the stop window committed after the replay read are still in the queue.
        await self._send([replay_complete_xml(self._clock())])
        return last

    async def _live(self, last: int) -> None:
        request = self.request
        ended = False
        while not ended:
            deadline = None
            if request.stop is not None:
                left = (request.stop - self._clock()).total_seconds()
                deadline = asyncio.get_running_loop().time() + max(left, 0.0)
            first = await self.subscriber.get(deadline=deadline)
            if first is None:
                break  # stopTime has passed
            batch: list[bytes] = []
            for notification in [first, *self.subscriber.take_ready(_BATCH_ITEMS)]:
                if notification.id <= last:
                    continue  # already replayed
                last = notification.id
                if request.stop is not None and notification.event_time > request.stop:
                    ended = True
                    break
                if selects(request.filter, notification):
                    batch.append(notification.xml)
            await self._send(batch)
            self.sent += len(batch)
        await self._send([notification_complete_xml(self._clock())])


# ------------------------------------------------------------------------ the service


class NotificationService:
    """Owns the bus and the subscriptions of one server; ``install`` it into a core."""

    capabilities = NOTIFICATION_CAPABILITIES

    def __init__(
        self,
        *,
        source: EventSource,
        limits: NotificationLimits | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.source = source
        self.limits = limits or NotificationLimits()
        self.bus = EventBus(source=source, gap_timeout=self.limits.gap_timeout)
        self._clock = clock
        self.subscriptions: dict[int, Subscription] = {}

    async def start(self) -> None:
        await self.bus.start()
        metrics.add_queue_source(self.queue_depths)

    def queue_depths(self) -> list[tuple[int, int]]:
        """(session id, notifications queued not yet sent) of each subscription."""
        return [(sid, len(s.subscriber)) for sid, s in list(self.subscriptions.items())]

    async def stop(self) -> None:
        metrics.remove_queue_source(self.queue_depths)
        for subscription in list(self.subscriptions.values()):
            subscription.close()
        self.subscriptions.clear()
        await self.bus.stop()

    def install(self, core: NetconfCore) -> None:
        """Register create-subscription, the stream list and the session-end hook."""
        core.registry.register(
            namespace=NOTIF_NS, name="create-subscription", handler=self._create_subscription
        )
        core.state_providers.append(self.streams_state)
        core.session_end_hooks.append(self._session_ended)

    async def _create_subscription(self, ctx: RpcContext, op: etree._Element) -> Reply:
        request = parse_subscription(op, now=self._clock())
        info = ctx.core.sessions.get(ctx.session_id)
        if info is None or info.send is None:
            raise RpcError(
                tag=ErrorTag.OPERATION_NOT_SUPPORTED,
                message="this session cannot receive notifications",
            )
        current = self.subscriptions.get(ctx.session_id)
        if current is not None and (current.task is None or not current.task.done()):
            raise RpcError(
                tag=ErrorTag.IN_USE,
                type=ErrorType.PROTOCOL,
                message="this session already has an active subscription",
            )
        subscription = Subscription(
            request=request,
            session=info,
            bus=self.bus,
            source=self.source,
            limits=self.limits,
            clock=self._clock,
        )
        self.subscriptions[ctx.session_id] = subscription
        subscription.register()
        ctx.after_reply.append(subscription.start)
        log.info(
            "subscription created",
            extra={
                "session": ctx.session_id,
                "stream": str(request.stream),
                "start": format_event_time(request.start) if request.start else "-",
                "stop": format_event_time(request.stop) if request.stop else "-",
                "filtered": request.filter is not None,
            },
        )
        return OkReply()

    def _session_ended(self, session_id: int) -> None:
        subscription = self.subscriptions.pop(session_id, None)
        if subscription is not None:
            subscription.close()

    def streams_state(self) -> etree._Element:
        """``netconf/streams`` (RFC 5277 §3.2.1) as a ``<data>`` element."""
        created = format_event_time(self.source.first_event_time())
        data = etree.Element(f"{{{NC_BASE_NS}}}data")
        netconf = etree.SubElement(
            data,
            f"{{{NETMOD_NOTIF_NS}}}netconf",
            nsmap={None: NETMOD_NOTIF_NS},  # type: ignore[dict-item]
        )
        streams = etree.SubElement(netconf, f"{{{NETMOD_NOTIF_NS}}}streams")
        for stream in Stream:
            node = etree.SubElement(streams, f"{{{NETMOD_NOTIF_NS}}}stream")
            for name, text in (
                ("name", str(stream)),
                ("description", STREAM_DESCRIPTIONS[stream]),
                ("replaySupport", "true"),
                ("replayLogCreationTime", created),
            ):
                etree.SubElement(node, f"{{{NETMOD_NOTIF_NS}}}{name}").text = text
        return data
