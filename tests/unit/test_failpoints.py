"""Failpoints: named, off unless armed, and the N-th hit of an armed one kills the process."""

from __future__ import annotations

import signal
import subprocess
import sys

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
