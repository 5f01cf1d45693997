"""The one wall clock: every timestamp the orchestrator makes comes from an injected :data:`Clock`.

Production passes :func:`utc_now`; tests pass a fake so time-based rules run without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
