"""``esc_nc_cli notif`` against the real server and event log, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from esc_orch.cli.main import main
from esc_orch.model.events import format_event_time
from esc_orch.northbound.backend import Datastore
from nbsupport.notif_server import SqlServerThread
from nbsupport.server import PASSWORD, USER
from payloads import config_of, esc

pytestmark = pytest.mark.functional


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SqlServerThread]:
    srv = SqlServerThread(data_dir=tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


def _tenant(server: SqlServerThread, name: str) -> None:
    assert server.store is not None
    config = config_of(esc(f"<tenants><tenant><name>{name}</name></tenant></tenants>"))
    server.store.edit_config(target=Datastore.RUNNING, config=config)


def _args(server: SqlServerThread, *args: str) -> list[str]:
    return ["--port", str(server.port), "--user", USER, "--password", PASSWORD, "notif", *args]


def test_notif_prints_as_events_arrive_and_ctrl_c_exits_0(server: SqlServerThread) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "esc_orch.cli.main", *_args(server)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 15
        assert proc.stdout is not None and proc.stderr is not None
        # it says when the subscription is in place (on stderr: stdout is for events)
        subscribed = proc.stderr.readline()
        assert subscribed.startswith("esc_nc_cli: subscribed to escEvent (live events only)")
        _tenant(server, "live-1")
        _tenant(server, "live-2")
        stdout = proc.stdout
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")))
        reader.start()
        while not any("Tenant [live-2]" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        assert "CREATE_TENANT  SUCCESS 200" in lines[0]
        # one empty line after each event: the second starts after the first's blank line
        second = next(i for i, line in enumerate(lines) if "Tenant [live-2]" in line) - 1
        assert lines[second - 1] == "\n" and "CREATE_TENANT" in lines[second]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_notif_since_filter_and_count(
    server: SqlServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    since = format_event_time(datetime.now(UTC) - timedelta(seconds=5))
    for name in ("a", "b", "c"):
        _tenant(server, name)
    args = _args(server, "--since", since, "--filter", "escEvent[tenant='b']", "--count", "1")
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Tenant [b] created successfully" in out and "[a]" not in out and "[c]" not in out
    assert (
        f"subscribed to escEvent (replaying from {since}, then live, "
        "filter escEvent[tenant='b'])" in captured.err
    )


def test_notif_until_ends_with_notification_complete(
    server: SqlServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    _tenant(server, "old")
    since = format_event_time(datetime.now(UTC) - timedelta(seconds=5))
    until = format_event_time(datetime.now(UTC))
    assert main(_args(server, "--since", since, "--until", until, "--xml")) == 0
    out = capsys.readouterr().out
    assert "<tenant>old</tenant>" in out
    assert "replayComplete" in out and "notificationComplete" in out


def test_notif_bad_time_is_a_usage_error(
    server: SqlServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(server, "--since", "yesterday")) == 2
    assert "--since needs an RFC 3339 time" in capsys.readouterr().err
