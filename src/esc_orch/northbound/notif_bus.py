"""The live side of escEvent delivery: committed events in id order, fanned out to sessions.

The event log (a port, :class:`EventSource`; ``esc_orch.store.events.EventLog`` in
production) calls its listeners from whatever thread committed; :class:`EventBus` moves the
events onto the event loop with ``call_soon_threadsafe`` and delivers them strictly in id
order. Ids are gapless, so a missing id means its publisher is late (two transactions
committing close together in two threads): the bus holds what comes after the gap, and if
the gap is still open after ``gap_timeout`` it reads the missing ids from the log itself,
which is the truth. Each event is rendered once, into a :class:`Notification` shared by
every subscriber.

Fan-out never waits: each :class:`Subscriber` has a bounded queue; when one overflows (its
client stopped reading) the subscriber's ``on_overflow`` closes that session, and the
others and the daemon go on untouched. The client can reconnect and replay from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from lxml import etree

from esc_orch.model.events import LoggedEvent
from esc_orch.model.schema import NC_NS

log = logging.getLogger(__name__)

EventListener = Callable[[Sequence[LoggedEvent]], None]


class EventSource(Protocol):
    """The durable event log as the NETCONF layer sees it (all methods are thread-safe;
    the reading ones block and are called in worker threads)."""

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` with each batch of committed events, from any thread."""
        ...

    def remove_listener(self, listener: EventListener) -> None: ...

    def last_id(self) -> int:
        """The id of the newest event ever committed (0 for none)."""
        ...

    def read(
        self,
        *,
        after_id: int = 0,
        start: datetime | None = None,
        stop: datetime | None = None,
        limit: int = 500,
    ) -> list[LoggedEvent]:
        """Events with id > ``after_id`` and start <= eventTime <= stop, in id order."""
        ...

    def first_event_time(self) -> datetime:
        """The eventTime of the oldest event replay can return."""
        ...


class Notification:
    """One event as every session receives it: rendered once, parsed only for filters."""

    __slots__ = ("_filter_root", "event_time", "id", "payload", "xml")

    def __init__(self, event: LoggedEvent) -> None:
        self.id = event.id
        self.event_time = event.event_time
        self.payload = event.payload
        self.xml = event.notification_xml()
        self._filter_root: etree._Element | None = None

    def filter_root(self) -> etree._Element:
        """``<data>`` holding the ``<escEvent>``: what a subscription filter is applied to."""
        if self._filter_root is None:
            root = etree.Element(f"{{{NC_NS}}}data")
            root.append(etree.fromstring(self.payload))
            self._filter_root = root
        return self._filter_root


class Subscriber:
    """The bounded queue of one subscription; filled by the bus, drained by its task."""

    def __init__(self, *, capacity: int, on_overflow: Callable[[str], None]) -> None:
        self.capacity = capacity
        self.overflowed = False
        self._queue: deque[Notification] = deque()
        self._wake = asyncio.Event()
        self._on_overflow = on_overflow

    def offer(self, notification: Notification) -> None:
        """Queue ``notification`` without waiting; on overflow give up on this subscriber."""
        if self.overflowed:
            return
        if len(self._queue) >= self.capacity:
            self.overflowed = True
            self._queue.clear()
            self._on_overflow(f"notification queue overflow ({self.capacity} undelivered)")
            return
        self._queue.append(notification)
        self._wake.set()

    async def get(self, *, deadline: float | None = None) -> Notification | None:
        """The next notification; ``None`` once the loop time ``deadline`` has passed."""
        while not self._queue:
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()

    def take_ready(self, limit: int) -> list[Notification]:
        """Up to ``limit`` notifications that are already queued (never waits)."""
        count = min(limit, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    def __len__(self) -> int:
        return len(self._queue)


class EventBus:
    """Committed events → every :class:`Subscriber`, in id order, without waiting on any."""

    def __init__(self, *, source: EventSource, gap_timeout: float = 0.5) -> None:
        self._source = source
        self._gap_timeout = gap_timeout
        self._subscribers: set[Subscriber] = set()
        self._held: dict[int, LoggedEvent] = {}
        self._next: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gap_task: asyncio.Task[None] | None = None

    @property
    def last_delivered(self) -> int:
        return (self._next or 1) - 1

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._source.add_listener(self._from_any_thread)  # first, so nothing slips between
        self._next = await asyncio.to_thread(self._source.last_id) + 1
        self._held = {i: e for i, e in self._held.items() if i >= self._next}
        self._drain()

    async def stop(self) -> None:
        self._source.remove_listener(self._from_any_thread)
        if self._gap_task is not None:
            self._gap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gap_task
        self._subscribers.clear()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # ---------------------------------------------------------------- receiving

    def _from_any_thread(self, events: Sequence[LoggedEvent]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self.receive, tuple(events))

    def receive(self, events: Sequence[LoggedEvent]) -> None:
        """Take committed events (on the loop); deliver what is now contiguous."""
        for event in events:
            if self._next is None or event.id >= self._next:
                self._held[event.id] = event
        if self._next is None:
            return
        self._drain()
        if self._held and (self._gap_task is None or self._gap_task.done()):
            self._gap_task = asyncio.get_running_loop().create_task(self._fill_gap())

    def _drain(self) -> None:
        assert self._next is not None
        while self._next in self._held:
            notification = Notification(self._held.pop(self._next))
            self._next += 1
            for subscriber in list(self._subscribers):
                subscriber.offer(notification)

    async def _fill_gap(self) -> None:
        while self._held and self._next is not None:
            await asyncio.sleep(self._gap_timeout)
            if not self._held:
                return
            first_held = min(self._held)
            if first_held <= self._next:
                self._drain()
                continue
            missing = await asyncio.to_thread(
                self._source.read, after_id=self._next - 1, limit=first_held - self._next
            )
            for event in missing:
                if event.id >= self._next:
                    self._held.setdefault(event.id, event)
            if self._next not in self._held:
                log.warning(
                    "events missing from the log skipped",
                    extra={"first": self._next, "last": first_held - 1},
                )
                self._next = first_held
            self._drain()
