"""Failpoints: named, off unless armed, and the N-th hit of an armed one kills the process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from esc_orch import failpoints


def test_points_are_inert_unless_armed() -> None:
    failpoints.disable_all()
    for name in failpoints.POINTS:
        failpoints.hit(name)  # nothing happens (this process is still here)


@pytest.mark.parametrize(
    "spec",
    ["lifecycle.after-intent", "lifecycle.after-intent=kill", "nope=kill@1", "x", "a=boom@1"],
)
def test_bad_specifications_are_refused(spec: str) -> None:
    with pytest.raises(failpoints.FailpointError):
        failpoints.configure(spec)
    failpoints.disable_all()


def test_the_nth_hit_kills_the_process() -> None:
    code = (
        "from esc_orch import failpoints\n"
        "failpoints.configure('lifecycle.after-event=kill@2, lifecycle.after-intent=kill@9')\n"
        "failpoints.hit('lifecycle.after-event'); print('one', flush=True)\n"
        "failpoints.hit('lifecycle.before-outcome'); print('other point', flush=True)\n"
        "failpoints.hit('lifecycle.after-event'); print('two', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["one", "other", "point"]


def test_the_environment_only_arms_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, "esc_orch.daemon.cli:main=kill@1")
    with pytest.raises(failpoints.FailpointError, match="unknown failpoint"):
        failpoints.configure_from_env()  # a module:function is no point name: refused
    failpoints.disable_all()


def test_stop_freezes_the_process_at_the_point_until_sigcont() -> None:
    code = (
        "from esc_orch import failpoints\n"
        "failpoints.configure('lifecycle.after-intent=stop@1')\n"
        "print('before', flush=True)\n"
        "failpoints.hit('lifecycle.after-intent'); print('after', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "before"
        deadline = time.monotonic() + 30
        while _state(proc.pid) != "T":  # stopped at the point
            assert time.monotonic() < deadline, "never stopped"
            time.sleep(0.02)
        assert proc.poll() is None
        proc.send_signal(signal.SIGCONT)
        assert proc.stdout.readline().strip() == "after"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]
