"""Group commit: edits that queue up while another is running are committed together.

Why: every edit-config paid its own database transaction (and, on SQLite with
``synchronous=FULL``, its own fsync), one after the other under the datastore mutex, so ten
sessions editing at once waited in line for ten commits. Here an edit queues a job and waits
for the mutex; whoever gets it first runs *every* job queued ahead of the next non-edit
operation through the backend's ``run_group`` — one transaction, the jobs applied one after
the other, each seeing the ones before it — and answers each job with its own result.

RFC 6241 order and semantics are kept:

* jobs run in arrival order, each validated against the result of the ones before it, and
  each gets its own reply (an edit refused is refused alone and changes nothing);
* a job's lock check (``before``) runs right before it, inside the mutex, and no lock,
  unlock, commit or other operation can run inside a group: a group never takes a job that
  arrived after an operation still waiting for the mutex, so that operation sees everything
  before it and nothing after it;
* nobody is answered before the group's transaction is durable; if the transaction fails,
  every job of the group gets the failure (none was acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: The backend's group runner: thunks in, (ok, result-or-exception) per thunk out, after
#: one durable commit for all of them.
GroupRunner = Callable[[Sequence[Callable[[], Any]]], list[tuple[bool, Any]]]


@dataclass(slots=True)
class _Job:
    ticket: int
    fn: Callable[[], Any]
    before: Callable[[], None] | None
    future: asyncio.Future[Any]


class EditGroups:
    """The queue of edit jobs of one server, and the tickets of operations waiting alone."""

    def __init__(self, *, mutex: asyncio.Lock) -> None:
        self._mutex = mutex
        self._tickets = itertools.count()
        self._queue: list[_Job] = []
        self._solo: set[int] = set()

    def enter_solo(self) -> int:
        """Before a non-edit operation waits for the mutex: later edits must wait for it.
        (A plain pair of calls, not a generator context manager: those rewrite the
        traceback of what they see raised, which our frozen RpcError refuses.)"""
        ticket = next(self._tickets)
        self._solo.add(ticket)
        return ticket

    def leave_solo(self, ticket: int) -> None:
        self._solo.discard(ticket)

    async def run(
        self, fn: Callable[[], Any], *, before: Callable[[], None] | None, runner: GroupRunner
    ) -> Any:
        loop = asyncio.get_running_loop()
        job = _Job(next(self._tickets), fn, before, loop.create_future())
        self._queue.append(job)
        try:
            while not job.future.done():
                async with self._mutex:
                    if not job.future.done():
                        await self._lead(runner)  # may leave ours for after a solo op
        except asyncio.CancelledError:
            if job in self._queue:
                self._queue.remove(job)  # never started: nothing to undo
            raise
        return await job.future

    def _take(self) -> list[_Job]:
        """The queued jobs ahead of the first operation waiting alone, in arrival order."""
        limit = min(self._solo, default=None)
        taken = [j for j in self._queue if limit is None or j.ticket < limit]
        self._queue = [j for j in self._queue if j not in taken]
        return [j for j in taken if not j.future.done()]

    async def _lead(self, runner: GroupRunner) -> None:
        runnable: list[_Job] = []
        for job in self._take():
            if job.before is not None:
                try:
                    job.before()  # lock checks, in order, with the lock table frozen
                except Exception as exc:
                    job.future.set_exception(exc)
                    continue
            runnable.append(job)
        if not runnable:
            return
        task = asyncio.ensure_future(asyncio.to_thread(runner, [j.fn for j in runnable]))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The leader was cancelled (kill-session): the group still finishes and every
            # other job gets its answer; the mutex is released only after the commit.
            with contextlib.suppress(BaseException):
                await asyncio.wait({task})
            self._answer(runnable, task)
            raise
        except Exception:
            pass  # answered below, to every job of the group
        self._answer(runnable, task)

    @staticmethod
    def _answer(runnable: list[_Job], task: asyncio.Future[list[tuple[bool, Any]]]) -> None:
        failure = task.exception() if task.done() and not task.cancelled() else None
        results = task.result() if task.done() and failure is None else None
        for index, job in enumerate(runnable):
            if job.future.done():
                continue
            if results is None:
                if failure is None:
                    job.future.cancel()
                else:
                    job.future.set_exception(failure)
                continue
            ok, value = results[index]
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
