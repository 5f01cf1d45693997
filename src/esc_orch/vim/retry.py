"""Retrying temporary VIM errors with exponential backoff under an injectable sleep.

Only :class:`TemporaryVimError` is retried; everything else is final. The delay is the larger
of the backoff step and the server's ``retry_after``, capped, so unit tests run the policy
with a recording sleep and never wait.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from esc_orch.vim.errors import TemporaryVimError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    attempts: int = 4  # total tries, first included
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, *, attempt: int, retry_after: float = 0.0) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        step = self.base_delay * 2.0 ** (attempt - 1)
        return min(self.max_delay, max(step, retry_after))


async def with_retries(call: Callable[[], Awaitable[T]], *, policy: RetryPolicy, sleep: Sleep) -> T:
    """Run ``call``; on :class:`TemporaryVimError` wait and try again, up to the policy."""
    attempt = 1
    while True:
        try:
            return await call()
        except TemporaryVimError as exc:
            if attempt >= policy.attempts:
                raise
            await sleep(policy.delay(attempt=attempt, retry_after=exc.retry_after))
            attempt += 1
