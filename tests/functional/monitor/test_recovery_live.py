"""Live monitoring and recovery (seed scenario 2) inside a private network namespace.

The cases are in ``recovery_live_cases.py``; this test runs them under ``unshare --net`` so the
seed's VM address (192.168.23.62) is pinged only on that namespace's ``lo``. A machine that
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
CASES = Path(__file__).with_name("recovery_live_cases.py")
REPO = Path(__file__).resolve().parents[3]


def test_monitoring_and_recovery_live_in_a_private_namespace() -> None:
    require_netns()
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=--import-mode=importlib", str(CASES)],
        cwd=REPO, env={**os.environ, INSIDE_MARKER: "1"},
        check=False, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "3 passed" in out and "skipped" not in out, out[-3000:]
