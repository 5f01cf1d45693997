"""ncclient without polling: its session thread sleeps until data arrives or a message is queued.

Why: ncclient's session thread loops "send what is queued, then wait up to ``TICK`` for the
channel to be readable". ``TICK`` is 0.1 s, so a request waits up to 100 ms before it is sent;
the usual cure, ``TICK = 0.001``, makes every idle client (``esc_nc_cli notif`` open for
months) wake a thousand times a second: 2.7 % of a core measured doing nothing.

Here the thread's selector also watches a socketpair, and the session's ``send`` writes one
byte to it after queueing: a queued request wakes the thread at once, and with nothing to do
the thread sleeps for a whole ``TICK`` (kept at ncclient's 0.1 s). The selector filters its
own wake-ups out of what it returns, so ncclient's loop sees "nothing to read" and goes round
to send. No ncclient code is copied or replaced: :func:`install` swaps the ``selectors``
module that ncclient's session module looks up at thread start for one whose
``DefaultSelector`` is :class:`WakeableSelector`; it is idempotent and changes nothing else.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import types
from collections.abc import Callable
from typing import Any

import ncclient.transport.session as nc_session

#: How long an idle session thread sleeps between checks (ncclient's own default).
IDLE_TICK = 0.1


class WakeableSelector(selectors.DefaultSelector):
    """A selector that also wakes when the session owning the current thread queues a send.

    Created by ncclient's session thread (``Session.run``): ``threading.current_thread()``
    is then the ncclient ``Session``, whose ``send`` is wrapped to poke the socketpair.
    """

    def __init__(self) -> None:
        super().__init__()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        super().register(self._wake_r, selectors.EVENT_READ)
        owner = threading.current_thread()
        original = getattr(owner, "send", None)
        if callable(original):
            owner.send = _waking(original, self.wake)  # type: ignore[attr-defined]

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # already awake (buffer full), or closing
            self._wake_w.send(b"\0")

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready = super().select(timeout)
        out = []
        for key, events in ready:
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):  # drained (BlockingIOError) or closed
                    while self._wake_r.recv(4096):
                        pass
                continue
            out.append((key, events))
        return out

    def close(self) -> None:
        super().close()
        self._wake_r.close()
        self._wake_w.close()


def _waking(send: Callable[[Any], None], wake: Callable[[], None]) -> Callable[[Any], None]:
    def send_and_wake(message: Any) -> None:
        send(message)
        wake()

    return send_and_wake


def install() -> None:
    """Make ncclient session threads wake on sends instead of polling (idempotent)."""
    current = getattr(nc_session, "selectors", None)
    if getattr(current, "DefaultSelector", None) is WakeableSelector:
        return
    shim = types.SimpleNamespace(
        DefaultSelector=WakeableSelector,
        EVENT_READ=selectors.EVENT_READ,
        EVENT_WRITE=selectors.EVENT_WRITE,
    )
    nc_session.selectors = shim
    nc_session.TICK = IDLE_TICK
