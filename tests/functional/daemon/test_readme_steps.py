"""README's "Run the daemon and drive it", run in the order written with ``bash -e``.

Only what would collide with other runs is changed: /tmp paths go to the test's directory,
and the ports (8830, 8441..8443, 9464) to free ones. The block must end with the deployment
alive (SERVICE_ALIVE printed by notif), the metrics scraped, everything stopped.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[3]


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Run the daemon and drive it")
    body = text.index("```sh\n", start) + len("```sh\n")
    return text[body : text.index("```", body)]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports() -> tuple[int, int, int]:
    """(daemon port, emulator base port with two more after it, metrics port)."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if all(_free(p) for p in range(base, base + 6)):
            return base, base + 1, base + 5
    raise AssertionError("no free ports")


def test_readme_steps_wait_for_their_jobs_by_pid() -> None:
    """``wait %3`` fails ("no such job", status 127, so ``bash -e`` stops there and leaves the
    hosts and the daemon running) when that job ended before the shell reached the ``wait``,
    which the notif job does whenever its three events come before the edit-config client has
    exited, as on a loaded machine; ``wait $pid`` returns the status of an ended child."""
    script = readme_block()
    assert not re.search(r"\b(wait|kill)\s+%", script), script
    assert "wait $notif" in script


def test_readme_steps_run_as_written(tmp_path: Path) -> None:
    nc, csp, prom = free_ports()
    script = readme_block()
    for old, new in (
        ("/tmp/", f"{tmp_path}/"),
        ("8830", str(nc)),
        ("--base-port 8441", f"--base-port {csp}"),
        ("9464", str(prom)),
    ):
        assert old in script, old
        script = script.replace(old, new)
    # the connectors' URLs follow the emulator's ports
    connectors = (REPO / "examples" / "vim_connectors.xml").read_text()
    for i in range(3):
        connectors = connectors.replace(f"127.0.0.1:{8441 + i}", f"127.0.0.1:{csp + i}")
    local_xml = tmp_path / "vim_connectors.example.xml"
    local_xml.write_text(connectors)
    script = script.replace("examples/vim_connectors.xml", str(local_xml))
    proc = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ESC_NC_")},
    )
    gone = False
    try:
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"the README steps did not end within 120 s: {exc.output}"
            ) from None
        assert proc.returncode == 0, out
        for expected in ("VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE", "SERVICE_ACTIVE_STATE"):
            assert expected in out, out
        assert 'esc_orch_lifecycle_runs_total{operation="deploy",outcome="success"} 1.0' in out
        # kill $orchd $hosts stops everything the steps started (they exit within seconds)
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                os.killpg(proc.pid, 0)
                time.sleep(0.2)
        except ProcessLookupError:
            gone = True
            return
        raise AssertionError("a process of the README steps was still running 30 s after them")
    finally:
        # Whatever failed, nothing the steps started outlives the test: a daemon left behind
        # keeps driving its connectors' ports, which later runs' emulators may reuse.
        if not gone:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
