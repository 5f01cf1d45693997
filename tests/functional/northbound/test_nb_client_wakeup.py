"""Our ncclient client (``esc_orch.cli.wakeup``) sends at once and sleeps while idle.

ncclient's session thread used to be tuned to poll every 1 ms (2.7 % of a core for an idle
``esc_nc_cli notif``); now a queued request wakes it. These tests would hang (each request
waiting for a 30 s tick) or count hundreds of wake-ups a second without the wake-up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ncclient.transport.session as nc_session
import pytest

from esc_orch.cli import wakeup
from nbsupport.memory_backend import MemoryBackend
from nbsupport.server import ServerThread, nc_connect, prepare_data_dir

pytestmark = pytest.mark.functional


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(data_dir=prepare_data_dir(tmp_path), backend=MemoryBackend()).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_requests_are_sent_at_once_not_at_the_next_tick(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    wakeup.install()
    monkeypatch.setattr(nc_session, "TICK", 30.0)  # a poll-only client would wait 30 s each
    with nc_connect(server.port, timeout=5) as m:
        start = time.monotonic()
        for _ in range(20):
            assert m.get_config(source="running").ok
        assert time.monotonic() - start < 5.0  # generous: far below one 30 s tick


def test_an_idle_session_thread_sleeps(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    wakeup.install()
    calls: list[float] = []
    original = wakeup.WakeableSelector.select

    def counting(self: Any, timeout: float | None = None) -> Any:
        calls.append(time.monotonic())
        return original(self, timeout)

    monkeypatch.setattr(wakeup.WakeableSelector, "select", counting)
    with nc_connect(server.port, timeout=5) as m:
        assert m.get_config(source="running").ok
        calls.clear()
        time.sleep(1.0)
        idle = len(calls)
        assert m.get_config(source="running").ok
    # ncclient's 0.1 s tick: about 10 wake-ups in a second (1 ms polling made ~1,000).
    assert idle <= 15, idle
