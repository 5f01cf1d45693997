"""esc-orchd serve as deployed (SqlDatastore, event log): notifications survive a restart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from esc_orch.model.events import format_event_time, parse_event_time
from esc_orch.model.schema import ESC_NS, NOTIF_NS
from nbsupport.server import PASSWORD, USER, nc_connect

pytestmark = pytest.mark.functional

ORCHD = [sys.executable, "-m", "esc_orch.daemon.cli"]
TENANT = (
    f'<config><esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>{{}}</name></tenant>'
    "</tenants></esc_datamodel></config>"
)


@contextmanager
def daemon(data_dir: Path) -> Iterator[int]:
    proc = subprocess.Popen(
        [*ORCHD, "serve", "--data-dir", str(data_dir), "--bind", "127.0.0.1", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        port = 0
        while not port:
            assert time.monotonic() < deadline and proc.poll() is None, "daemon did not listen"
            match = re.search(r"listening .*port=(\d+)", proc.stderr.readline())
            port = int(match[1]) if match else 0
        yield port
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_events_logged_before_a_restart_are_replayed_after_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    added = subprocess.run(
        [*ORCHD, "useradd", "--data-dir", str(data_dir), USER, "--password-stdin"],
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    with daemon(data_dir) as port, nc_connect(port) as m:
        m.create_subscription(stream_name="escEvent")
        m.edit_config(target="running", config=TENANT.format("before"))
        first = m.take_notification(block=True, timeout=10)
        assert first is not None
    start = parse_event_time(first.notification_ele.findtext(f"{{{NOTIF_NS}}}eventTime") or "")
    with daemon(data_dir) as port, nc_connect(port) as m:
        m.edit_config(target="running", config=TENANT.format("after"))
        m.create_subscription(stream_name="escEvent", start_time=format_event_time(start))
        got = []
        for _ in range(3):
            notification = m.take_notification(block=True, timeout=10)
            assert notification is not None
            root = notification.notification_ele
            got.append(root.findtext(f".//{{{ESC_NS}}}tenant") or root[1].tag.split("}")[1])
    assert got == ["before", "after", "replayComplete"]
