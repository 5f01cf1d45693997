"""Admission of SSH connections before they log in, and log lines that cannot flood the log.

A peer that opens TCP connections and never speaks SSH costs a file descriptor each: 1,100
idle connections exhausted the daemon's descriptors, so legitimate clients timed out and a
deploy failed with "Too many open files", while the log grew 46 MB in 45 s. The SSH adapter
asks a :class:`ConnectionGate` about every accepted connection: over the limit of
unauthenticated connections, in all or from one source address, the connection is closed
at once, and one :class:`RateLimitedLog` line says so (with how many were refused since the
last line). Both are pure bookkeeping with an injectable clock, tested without sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Refusal(StrEnum):
    """Why a connection was refused before authentication."""

    TOTAL = "too many unauthenticated connections"
    PER_SOURCE = "too many unauthenticated connections from this address"


@dataclass(frozen=True, slots=True)
class GateLimits:
    max_total: int
    max_per_source: int


class ConnectionGate:
    """Counts unauthenticated connections, in all and per source address.

    Call :meth:`admit` when a connection is accepted (it is counted when admitted),
    :meth:`authenticated` when it has logged in and :meth:`closed` when it ends before that.
    """

    def __init__(self, *, max_total: int, max_per_source: int) -> None:
        self.limits = GateLimits(max_total=max_total, max_per_source=max_per_source)
        self._by_source: dict[str, int] = {}
        self._total = 0

    @property
    def pending(self) -> int:
        """Connections admitted and not yet authenticated or closed."""
        return self._total

    def pending_from(self, source: str) -> int:
        return self._by_source.get(source, 0)

    def admit(self, source: str) -> Refusal | None:
        if self._total >= self.limits.max_total:
            return Refusal.TOTAL
        if self._by_source.get(source, 0) >= self.limits.max_per_source:
            return Refusal.PER_SOURCE
        self._total += 1
        self._by_source[source] = self._by_source.get(source, 0) + 1
        return None

    def authenticated(self, source: str) -> None:
        self._release(source)

    def closed(self, source: str) -> None:
        self._release(source)

    def _release(self, source: str) -> None:
        count = self._by_source.get(source, 0)
        if count <= 0:
            return
        self._total -= 1
        if count == 1:
            del self._by_source[source]
        else:
            self._by_source[source] = count - 1


class RateLimitedLog:
    """At most one line per ``interval`` seconds per message; the rest are counted.

    The line after a quiet spell carries ``suppressed=N``: how many identical events were not
    logged since the previous line, so the log stays small and still tells the whole story.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, message: str, extra: Mapping[str, object]) -> bool:
        """Log ``message`` unless it was logged less than ``interval`` ago; True if logged."""
        now = self._clock()
        last = self._last.get(message)
        if last is not None and now - last < self._interval:
            self._suppressed[message] = self._suppressed.get(message, 0) + 1
            return False
        self._last[message] = now
        suppressed = self._suppressed.pop(message, 0)
        self._logger.warning(message, extra={**extra, "suppressed": suppressed})
        return True
