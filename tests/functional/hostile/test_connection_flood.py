"""A flood of idle TCP connections does not take the daemon down (issue 14, defect 2).

~1,100 connections that never start SSH used to exhaust the daemon's file descriptors:
legitimate clients timed out and the log grew 46 MB in 45 s. Now at most
``max_preauth_connections`` (and ``max_preauth_per_source`` per address) wait for their
login, each at most ``login_grace_time``; the rest are closed at once with one log line
per ten seconds.

The real ``esc-orchd`` runs as a subprocess; the flood comes from 127.0.0.2 (a loopback
source address, to 127.0.0.1) so the legitimate client on 127.0.0.1 is another source.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import pytest

from nbsupport.orchd import OrchdProcess
from nbsupport.rawclient import EEOM_CHECK, EomClient

pytestmark = pytest.mark.functional

FLOOD = 400
MAX_TOTAL, MAX_PER_SOURCE, GRACE = 60, 40, 4.0
PASSWORD = "flood-test-pw"


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _flood(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        socks.append(sock)
    return socks


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        while True:
            data = sock.recv(65536)  # the SSH banner, then EOF when the server closes
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_are_bounded_and_a_real_client_still_logs_in(tmp_path: Path) -> None:
    config = tmp_path / "orchd.toml"
    config.write_text(
        "[limits]\n"
        f"max_preauth_connections = {MAX_TOTAL}\n"
        f"max_preauth_per_source = {MAX_PER_SOURCE}\n"
        f"login_grace_time = {GRACE}\n"
    )
    with OrchdProcess(
        data_dir=tmp_path / "data",
        user="admin",
        password=PASSWORD,
        extra_args=("--config", str(config)),
    ) as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        time.sleep(0.5)
        fds_before = _fds(pid)
        log_before = len(daemon.log())
        socks = _flood(daemon.port, FLOOD)
        try:
            time.sleep(1.0)  # let the daemon accept and sort them
            fds_during = _fds(pid)

            async def login() -> bytes:
                client = await EomClient.open(daemon.port, user="admin", password=PASSWORD)
                try:
                    client.send(EEOM_CHECK)
                    return await client.raw_reply(wait=30)
                finally:
                    client.close()

            reply = asyncio.run(login())
            assert b"<data" in reply
            # The admitted idle connections end after the login grace time.
            assert _closed_by_server(socks[0])
            closed = sum(_closed_by_server(s) for s in socks[:MAX_PER_SOURCE])
        finally:
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.close()
        log = daemon.log()[log_before:]
    grown = fds_during - fds_before
    print(f"\nflood of {FLOOD}: daemon fds {fds_before} -> {fds_during}; log +{len(log)} bytes")
    assert grown <= MAX_PER_SOURCE + 10, f"fds grew by {grown}"
    assert closed == MAX_PER_SOURCE
    assert "connection refused: too many unauthenticated connections from this address" in log
    assert log.count("connection refused") <= 2
    assert len(log) < 20_000, log[-2000:]
