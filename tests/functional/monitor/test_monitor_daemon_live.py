"""Monitoring and recovery through the real daemon (seed scenario 2), in a private namespace.

The cases are in ``daemon_cases.py``; this test runs them under ``unshare --net`` so the seed's
VM addresses (192.168.23.61/62) are pinged only on that namespace's ``lo``. A machine that
cannot create a namespace skips with the reason; CI as root must run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.testing.netns import INSIDE_MARKER, require_netns

pytestmark = [pytest.mark.functional, pytest.mark.root]
CASES = Path(__file__).with_name("daemon_cases.py")
REPO = Path(__file__).resolve().parents[3]


def test_monitoring_and_recovery_through_the_daemon_in_a_private_namespace() -> None:
    require_netns()
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-o", "addopts=--import-mode=importlib", str(CASES)],
        cwd=REPO, env={**os.environ, INSIDE_MARKER: "1"},
        check=False, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-8000:]
    assert "4 passed" in out and "skipped" not in out, out[-3000:]
