"""A storm of wrong passwords keeps memory bounded; the admin still logs in (defect 5).

30 concurrent wrong-password attempts took the daemon's RSS from 105 MB to 498 MB (argon2 at
64 MiB each, as many at once as the thread pool allowed) and the admin's login then took
8.2 s. The real ``esc-orchd`` runs as a subprocess; its peak RSS (``VmHWM``) is read from
/proc before and after the storm.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncssh
import pytest

from nbsupport.orchd import OrchdProcess
from nbsupport.rawclient import EEOM_CHECK, EomClient

pytestmark = pytest.mark.functional

ATTEMPTS = 30
PASSWORD = "storm-test-pw"
MAX_GROWTH_KB = 64 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def _wrong(port: int, user: str) -> bool:
    try:
        conn = await asyncssh.connect(
            "127.0.0.1",
            port,
            username=user,
            password="wrong-password",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            login_timeout=60,
        )
    except asyncssh.PermissionDenied:
        return True
    conn.close()
    return False


def test_thirty_concurrent_wrong_passwords(tmp_path: Path) -> None:
    with OrchdProcess(data_dir=tmp_path / "data", user="admin", password=PASSWORD) as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid

        async def storm() -> tuple[list[bool], float, bytes]:
            # One check first, so the baseline includes one argon2 working set.
            assert await _wrong(daemon.port, "nobody")
            hwm_before.append(_status_kb(pid, "VmHWM"))
            users = ["admin" if i % 2 else f"user{i}" for i in range(ATTEMPTS)]
            refused = await asyncio.gather(*(_wrong(daemon.port, u) for u in users))
            start = time.monotonic()
            client = await EomClient.open(daemon.port, user="admin", password=PASSWORD)
            try:
                client.send(EEOM_CHECK)
                reply = await client.raw_reply(wait=30)
            finally:
                client.close()
            return refused, time.monotonic() - start, reply

        hwm_before: list[int] = []
        refused, login_s, reply = asyncio.run(storm())
        hwm_after = _status_kb(pid, "VmHWM")
    growth = hwm_after - hwm_before[0]
    print(
        f"\n{ATTEMPTS} wrong passwords: peak RSS {hwm_before[0] / 1024:.0f} MB -> "
        f"{hwm_after / 1024:.0f} MB; admin login afterwards {login_s:.1f} s"
    )
    assert all(refused)
    assert b"<data" in reply
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth / 1024:.0f} MB"
