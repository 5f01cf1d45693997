"""Group commit: the lifecycle's writes in one ordered queue, many to a transaction.

Each lifecycle step used to write its own transaction (a commit, an fsync, the ORM's unit of
work) on one worker thread, so deployments deploying at once queued one behind the other and
the worker, not the VIM, set the pace. Here every write is queued in the order it is made, and
one worker thread commits whatever has queued while its previous commit ran as **one**
transaction: one commit for many deployments' writes, with no added delay (a write alone is
committed at once).

What it guarantees:

* **Order, and a prefix after any crash.** Writes are committed in the order they were queued,
  and a batch is one transaction; so what a crash leaves durable is always a prefix of the
  queue, never a later write without an earlier one.
* **No commit of its own for what nobody waits for.** A batch of changes queued with
  :meth:`GroupCommit.write_later` only waits up to ``linger`` (3 ms) for more writes to join
  it; an awaited write, a call or a barrier ends the wait at once. So the events a run queues
  usually ride in the transaction of the next intent, and are committed at most a few
  milliseconds late when none comes.
* **Durable when woken.** :meth:`GroupCommit.write` returns only after the transaction holding
  its change has committed, and so every change queued before it is durable too. A change
  queued with :meth:`GroupCommit.write_later` is not waited for: the next awaited write (or
  :meth:`GroupCommit.barrier`) makes it durable, or a crash before then loses it together with
  everything queued after it.
* **One bad write fails alone.** A batch whose transaction fails is rolled back and its
  changes are committed again one by one, in order: the failing one's waiter gets the
  exception (a change nobody waits for is logged), the others commit.
* **Reads see every earlier write.** A call queued with :meth:`GroupCommit.call` runs on the
  worker after every change queued before it has committed.

The changes are opaque here: ``apply(session, changes)`` writes a batch inside its open
transaction, ``before_commit(changes, unwaited)`` runs after it, just before the commit
(``unwaited``: the batch holds a change nobody waits for), and ``committed(changes)`` after the
commit (the failpoints that mark a lost and a durable event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")

#: At most this many changes in one transaction (bounds a transaction's size and latency).
MAX_BATCH = 256
#: A batch nobody waits for yet waits this long (seconds) for more writes to join it.
LINGER_S = 0.003


@dataclass(slots=True)
class _Item(Generic[C]):
    change: C | None = None
    call: Callable[[], Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None


_STOP: Any = object()


def _resolve(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """On the loop: wake the waiters (a waiter that gave up is left alone)."""
    for future, value, exc in results:
        if future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


class GroupCommit(Generic[C]):
    """One worker thread committing queued changes in order, many per transaction."""

    def __init__(
        self,
        *,
        engine: Engine,
        apply: Callable[[Session, Sequence[C]], None],
        committed: Callable[[Sequence[C]], None] = lambda _changes: None,
        before_commit: Callable[[Sequence[C], bool], None] = lambda _changes, _unwaited: None,
        max_batch: int = MAX_BATCH,
        linger: float = LINGER_S,
        name: str = "lifecycle-store",
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._committed = committed
        self._before_commit = before_commit
        self._max_batch = max_batch
        self._linger = linger
        self._queue: queue.SimpleQueue[_Item[C]] = queue.SimpleQueue()
        #: Transactions committed and changes written (bench figures, tests).
        self.commits = 0
        self.changes = 0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ loop side

    async def write(self, change: C) -> None:
        """Queue ``change`` and return once it (and everything queued before) is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Item(change=change, loop=loop, future=future))
        await future

    def write_later(self, change: C) -> None:
        """Queue ``change`` without waiting (see the module docstring); a failure is logged."""
        self._queue.put(_Item(change=change))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker once everything queued before is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Item(call=fn, loop=loop, future=future))
        return await future

    async def barrier(self) -> None:
        """Return once every change queued so far is durable."""
        await self.call(lambda: None)

    def close(self) -> None:
        """Commit what is queued, then stop the worker."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        pending: _Item[C] | None = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is _STOP:
                return
            if item.call is not None:
                self._run_call(item)
                continue
            batch = [item]
            waited = item.future is not None
            linger_until = time.monotonic() + self._linger
            while len(batch) < self._max_batch:
                try:
                    if waited:
                        nxt = self._queue.get_nowait()
                    else:  # nobody waits yet: give the next write a moment to join
                        nxt = self._queue.get(timeout=max(0.0, linger_until - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is _STOP or nxt.call is not None:
                    pending = nxt
                    break
                batch.append(nxt)
                waited = waited or nxt.future is not None
            self._commit(batch)

    def _commit(self, batch: list[_Item[C]]) -> None:
        changes = [item.change for item in batch if item.change is not None]
        try:
            with Session(self._engine) as session, session.begin():
                self._apply(session, changes)
                self._before_commit(changes, any(item.future is None for item in batch))
        except Exception as exc:
            if len(batch) > 1:  # find the bad one: each alone, in order
                for item in batch:
                    self._commit([item])
                return
            self._wake(batch, exc)
            return
        self.commits += 1
        self.changes += len(changes)
        self._committed(changes)
        self._wake(batch, None)

    def _run_call(self, item: _Item[C]) -> None:
        assert item.call is not None
        try:
            value = item.call()
        except Exception as exc:
            self._send(item, None, exc)
            return
        self._send(item, value, None)

    def _wake(self, batch: list[_Item[C]], exc: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for item in batch:
            if item.future is None or item.loop is None:
                if exc is not None:
                    log.error("lifecycle: a write failed", exc_info=exc)
                continue
            by_loop.setdefault(item.loop, []).append((item.future, None, exc))
        for loop, results in by_loop.items():
            self._post(loop, results)

    def _send(self, item: _Item[C], value: Any, exc: BaseException | None) -> None:
        if item.future is not None and item.loop is not None:
            self._post(item.loop, [(item.future, value, exc)])

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, results: list[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, results)
