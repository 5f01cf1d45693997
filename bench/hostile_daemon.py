"""Bench: the real esc-orchd under a connection flood and a wrong-password storm.

Flood: N idle TCP connections from 127.0.0.2 (loopback) that never start SSH, held for
``--hold`` seconds; prints the daemon's open fds before/during, whether the admin can log in
meanwhile (and how long it takes), and how much the log grew. Storm: M concurrent SSH logins
with wrong passwords; prints the daemon's peak RSS (VmHWM) before/after and the admin's
login time afterwards. Bounded: loopback only, ends by itself.

Run: .venv/bin/python bench/hostile_daemon.py [--flood 1100] [--storm 30] [--hold 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from nbsupport.orchd import OrchdProcess
from nbsupport.rawclient import EEOM_CHECK, EomClient

PASSWORD = "bench-admin-pw"


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _admin_login(port: int) -> float:
    start = time.monotonic()
    client = await EomClient.open(port, user="admin", password=PASSWORD)
    try:
        client.send(EEOM_CHECK)
        await client.raw_reply(wait=60)
    finally:
        client.close()
    return time.monotonic() - start


async def _wrong(port: int, user: str) -> None:
    with contextlib.suppress(asyncssh.Error, OSError):
        conn = await asyncssh.connect(
            "127.0.0.1",
            port,
            username=user,
            password="wrong",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            login_timeout=60,
        )
        conn.close()


def flood(daemon: OrchdProcess, count: int, hold: float) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    before, log_before = _fds(pid), len(daemon.log())
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", daemon.port))
        except OSError as exc:
            print(f"  connect failed after {len(socks)}: {exc}")
            sock.close()
            break
        socks.append(sock)
    time.sleep(1.0)
    during = _fds(pid)
    try:
        login = f"{asyncio.run(asyncio.wait_for(_admin_login(daemon.port), 60)):.2f} s"
    except Exception as exc:
        login = f"FAILED ({type(exc).__name__})"
    time.sleep(max(0.0, hold - 1.0))
    for sock in socks:
        sock.close()
    grown = len(daemon.log()) - log_before
    print(
        f"flood of {len(socks)} idle connections: daemon fds {before} -> {during}; "
        f"admin login meanwhile {login}; log +{grown} bytes"
    )


def storm(daemon: OrchdProcess, count: int) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid

    async def run() -> tuple[float, float, float]:
        await _wrong(daemon.port, "nobody")
        hwm = _hwm_mb(pid)
        cpu = os.times()
        start = time.monotonic()
        await asyncio.gather(
            *(_wrong(daemon.port, "admin" if i % 2 else f"u{i}") for i in range(count))
        )
        del cpu
        return hwm, time.monotonic() - start, await _admin_login(daemon.port)

    hwm_before, storm_s, login_s = asyncio.run(run())
    print(
        f"storm of {count} wrong passwords ({storm_s:.1f} s): peak RSS "
        f"{hwm_before:.0f} MB -> {_hwm_mb(pid):.0f} MB; admin login afterwards {login_s:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1100)
    parser.add_argument("--storm", type=int, default=30)
    parser.add_argument("--hold", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with OrchdProcess(data_dir=Path(tmp) / "flood", user="admin", password=PASSWORD) as d:
            flood(d, args.flood, args.hold)
        with OrchdProcess(data_dir=Path(tmp) / "storm", user="admin", password=PASSWORD) as d:
            storm(d, args.storm)


if __name__ == "__main__":
    main()
