"""The daemon's side of notifications: the [notifications] settings and background pruning."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from esc_orch.daemon.config import ConfigError, NotificationSettings, load_config
from esc_orch.daemon.retention import prune_forever
from esc_orch.daemon.wiring import build_backend
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.events import EventLog


def test_notification_settings_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "esc-orchd.toml"
    path.write_text(
        "[notifications]\nqueue_size = 50\nmax_age_days = 7\nmax_events = 0\nprune_interval = 60\n"
    )
    settings = load_config(path).notifications
    assert settings == NotificationSettings(
        queue_size=50, max_age_days=7.0, max_events=0, prune_interval=60.0
    )
    assert settings.limits.queue_size == 50
    assert load_config(None).notifications == NotificationSettings()
    for bad in ("queue_size = 0", "max_events = -1", "colour = 3", "max_age_days = true"):
        path.write_text(f"[notifications]\n{bad}\n")
        with pytest.raises(ConfigError):
            load_config(path)


class _Events:
    def __init__(self) -> None:
        self.calls: list[tuple[timedelta | None, int | None]] = []

    def prune(self, *, max_age: timedelta | None = None, max_count: int | None = None) -> int:
        self.calls.append((max_age, max_count))
        if len(self.calls) == 2:
            raise RuntimeError("database away")  # logged, retried at the next interval
        return 0


async def test_pruning_runs_now_and_every_interval_and_survives_failures() -> None:
    events = _Events()
    settings = NotificationSettings(max_age_days=2, max_events=10, prune_interval=0.01)
    task = asyncio.create_task(prune_forever(events=events, settings=settings))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(events.calls) >= 3
    assert events.calls[0] == (timedelta(days=2), 10)


async def test_no_limits_no_pruning() -> None:
    events = _Events()
    settings = NotificationSettings(max_age_days=0, max_events=0)
    await asyncio.wait_for(prune_forever(events=events, settings=settings), 1)  # type: ignore[arg-type]
    assert events.calls == []


def test_the_sql_datastore_brings_its_event_log(tmp_path: Path) -> None:
    store = build_backend(tmp_path, load_config(None))
    try:
        assert isinstance(store, SqlDatastore)
        assert isinstance(store.events, EventLog)  # what serve() hands to notifications
        assert (tmp_path / "esc-orch.sqlite").is_file()
    finally:
        store.close()
