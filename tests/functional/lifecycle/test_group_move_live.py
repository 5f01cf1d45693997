"""A ten-VM group moved with at least nine VMs running throughout, each alive by its KPI
before the next one stops — in a private network namespace.

The case is in ``group_move_cases.py``; this test runs it under ``unshare --net`` so the
VMs' 192.168.23.x addresses are pinged only on that namespace's ``lo``. A machine that cannot
create a namespace skips with the reason; CI as root must run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.testing.netns import INSIDE_MARKER, require_netns

pytestmark = [pytest.mark.functional, pytest.mark.root]
CASES = Path(__file__).with_name("group_move_cases.py")
REPO = Path(__file__).resolve().parents[3]


def test_a_ten_vm_group_moves_with_nine_running_throughout_in_a_private_namespace() -> None:
    require_netns()
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "pytest", "-q", "-x", "-s",
         "-p", "no:cacheprovider", "-o", "addopts=--import-mode=importlib", str(CASES)],
        cwd=REPO, env={**os.environ, INSIDE_MARKER: "1"},
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-8000:]
    assert "1 passed" in out and "skipped" not in out, out[-3000:]
    print(next((line for line in out.splitlines() if "ten-VM group moved" in line), ""))
