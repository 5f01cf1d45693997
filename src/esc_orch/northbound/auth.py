"""Authentication seams of the NETCONF server: the user lookup port and login throttling.

The SSH adapter asks an :class:`Authenticator` (the daemon's user store) whether a password
or a public key is good, and asks :class:`LoginThrottle` how long to wait before answering.
Throttling is pure bookkeeping with an injectable clock, so its backoff is tested without
sleeping; the adapter does the (non-blocking) waiting.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Authenticator(Protocol):
    """Where the SSH adapter checks credentials. Both methods may be slow (argon2, file I/O):
    the adapter calls them in a worker thread."""

    def verify_password(self, *, username: str, password: str) -> bool: ...

    def authorized_keys(self, *, username: str) -> Sequence[str]:
        """OpenSSH public key lines (``ssh-ed25519 AAAA... comment``) accepted for ``username``."""
        ...


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Exponential delay after failed logins, per user name and per peer address.

    After ``n`` recent failures for a key, the next attempt waits ``base * 2**(n-1)`` seconds
    (capped at ``max_delay``); the larger of the user's and the peer's delay applies. A key's
    failures are forgotten ``forget_after`` seconds after its last failure, or on success.
    """

    def __init__(
        self,
        *,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        forget_after: float = 900.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    @staticmethod
    def keys(*, username: str, peer: str) -> tuple[str, str]:
        return f"user:{username}", f"peer:{peer}"

    def delay(self, keys: Iterable[str]) -> float:
        """Seconds to wait before checking the next attempt for ``keys``."""
        now = self._clock()
        worst = 0.0
        for key in keys:
            entry = self._failures.get(key)
            if entry is None:
                continue
            if now - entry.last > self.forget_after:
                del self._failures[key]
                continue
            worst = max(worst, min(self.max_delay, self.base_delay * 2 ** (entry.count - 1)))
        return worst

    def record_failure(self, keys: Iterable[str]) -> None:
        now = self._clock()
        for key in keys:
            entry = self._failures.pop(key, None)
            if entry is None or now - entry.last > self.forget_after:
                entry = _Failures(count=0, last=now)
            entry.count += 1
            entry.last = now
            self._failures[key] = entry
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)

    def record_success(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
