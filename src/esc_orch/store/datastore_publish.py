"""Committed changes handed to the datastore's listeners after the commit: in order, later.

Why: the listeners (the lifecycle, the VIM supervisor, metrics) were called in the committing
thread before the edit was answered, and the lifecycle's run that followed competed with the
next edits for the interpreter and for SQLite's single writer: half of a one-deployment
edit's time was the lifecycle of the edit before. NETCONF commits come first: while edits keep
arriving, their diffs wait here and are delivered together once no commit came for ``quiet``
seconds, or once the oldest has waited ``max_delay`` (so a stream of edits never starves the
lifecycle). The lifecycle's reactor keeps only the newest target of a deployment, so diffs
delivered together cost it one run, not one per edit.

Nothing here is needed for durability. What a listener learns is already committed: the
change, its events (``store/events.py`` publishes those right after the commit, not through
here) and the owed-run row of every changed deployment; the lifecycle reads the whole running
configuration at start and resumes every deployment. A crash while a diff waits here loses
nothing: the restart runs it (tests/reliability/test_crash_events.py).

Order and visibility: one thread delivers, in commit order. :meth:`Publisher.flush` delivers
everything committed before it was called and returns after; the NETCONF core calls it before
any operation but edit-config and get-config, so a ``get`` (opdata), an ESC action or an
``eo:`` RPC sees the lifecycle as it is after every acknowledged edit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Holding:
    """How long committed changes wait for the edits behind them (seconds)."""

    quiet: float = 0.1
    max_delay: float = 1.0

    def wait(self, *, now: float, first: float, last: float) -> float:
        """Seconds still to wait before delivering, 0 for now: ``first`` and ``last`` are
        when the oldest and the newest waiting change were posted."""
        return max(0.0, min(last + self.quiet, first + self.max_delay) - now)


class Publisher(Generic[Item]):
    """One thread that calls ``deliver`` with every posted item, in order, as ``holding``
    says (an exception of ``deliver`` is logged, the next item still delivered)."""

    def __init__(
        self,
        deliver: Callable[[Item], None],
        *,
        holding: Holding,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self._holding = holding
        self._clock = clock
        self._cond = threading.Condition()
        self._items: deque[Item] = deque()
        self._first = self._last = 0.0
        self._posted = 0
        self._delivered = 0
        self._urgent = 0  # deliver at once every item up to this count
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="datastore-publisher", daemon=True)
        self._thread.start()

    def post(self, item: Item) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            now = self._clock()
            if not self._items:
                self._first = now
            self._last = now
            self._items.append(item)
            self._posted += 1
            self._cond.notify_all()

    def pending(self) -> bool:
        """Whether some posted item is not delivered yet."""
        with self._cond:
            return self._delivered < self._posted

    def flush(self) -> None:
        """Deliver every item posted so far now; return once they are delivered. (From a
        listener itself, i.e. the delivering thread: returns at once, nothing to wait for.)"""
        if threading.current_thread() is self._thread:
            return
        with self._cond:
            target = self._posted
            self._urgent = max(self._urgent, target)
            self._cond.notify_all()
            while self._delivered < target and self._thread.is_alive():
                self._cond.wait(timeout=1.0)

    def close(self) -> None:
        """Deliver what is waiting, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10.0)

    def _take(self) -> list[Item] | None:
        """The items to deliver now (waiting as ``holding`` says), None once closed."""
        with self._cond:
            while True:
                if self._items:
                    if self._closed or self._urgent > self._delivered:
                        break
                    wait = self._holding.wait(now=self._clock(), first=self._first, last=self._last)
                    if wait <= 0:
                        break
                    self._cond.wait(timeout=wait)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()
            batch = list(self._items)
            self._items.clear()
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            for item in batch:
                try:
                    self._deliver(item)
                except Exception:
                    log.exception("datastore listener failed")
            with self._cond:
                self._delivered += len(batch)
                self._cond.notify_all()
