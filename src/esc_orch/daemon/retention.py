"""Background pruning of the event log, so its size stays bounded without an operator.

The log keeps every escEvent for replay; ``[notifications] max_age_days`` and ``max_events``
bound it. Pruning runs in a worker thread every ``prune_interval`` seconds (and once at
start), and a failure is logged and retried at the next interval, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from esc_orch.daemon.config import NotificationSettings
from esc_orch.northbound.notif_bus import EventSource

log = logging.getLogger(__name__)


class PrunableEventSource(EventSource, Protocol):
    def prune(self, *, max_age: timedelta | None = None, max_count: int | None = None) -> int:
        """Delete events beyond the limits; return how many."""
        ...


async def prune_forever(*, events: PrunableEventSource, settings: NotificationSettings) -> None:
    """Prune now and then every ``settings.prune_interval`` seconds, until cancelled."""
    max_age = timedelta(days=settings.max_age_days) if settings.max_age_days else None
    max_count = settings.max_events or None
    if max_age is None and max_count is None:
        return
    while True:
        try:
            await asyncio.to_thread(events.prune, max_age=max_age, max_count=max_count)
        except Exception:
            log.exception("event log pruning failed; retrying at the next interval")
        await asyncio.sleep(settings.prune_interval)
