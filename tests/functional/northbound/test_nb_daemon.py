"""esc-orchd as systemd runs it: useradd, serve (READY=1 on NOTIFY_SOCKET), login, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsupport.server import nc_connect

pytestmark = pytest.mark.functional

TESTS_DIR = Path(__file__).resolve().parents[2]
ORCHD = [sys.executable, "-m", "esc_orch.daemon.cli"]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(20)
    try:
        yield sock
    finally:
        sock.close()


def test_useradd_serve_login_sigterm(tmp_path: Path, notify_socket: socket.socket) -> None:
    data_dir = tmp_path / "data"
    added = subprocess.run(
        [*ORCHD, "useradd", "--data-dir", str(data_dir), "ops", "--password-stdin"],
        input="pw-123\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert (data_dir / "users.json").stat().st_mode & 0o777 == 0o600

    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = notify_socket.getsockname()
    proc = subprocess.Popen(
        [*ORCHD, "serve", "--data-dir", str(data_dir), "--bind", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = notify_socket.recv(4096).decode()
        assert ready.startswith("READY=1")
        port = int(ready.rsplit(":", 1)[1])
        with nc_connect(port, user="ops", password="pw-123") as m:
            assert m.get_config(source="running").ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert notify_socket.recv(4096).decode() == "STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "listening" in stderr
    assert "session started" in stderr


def test_user_management_commands(tmp_path: Path) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ORCHD, *args], input=stdin, capture_output=True, text=True, timeout=30, check=False
        )

    d = str(tmp_path)
    assert run("useradd", "--data-dir", d, "u1", "--password-stdin", stdin="a\n").returncode == 0
    dup = run("useradd", "--data-dir", d, "u1", "--password-stdin", stdin="a\n")
    assert dup.returncode == 1
    assert "already exists" in dup.stderr
    assert run("passwd", "--data-dir", d, "u1", "--password-stdin", stdin="b\n").returncode == 0
    assert run("userdel", "--data-dir", d, "u1").returncode == 0
    assert run("userdel", "--data-dir", d, "u1").returncode == 1


def test_serve_rejects_a_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "esc-orchd.toml"
    bad.write_text('port = "eight-thirty"\n')
    result = subprocess.run(
        [*ORCHD, "serve", "--data-dir", str(tmp_path), "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "port must be an integer" in result.stderr
