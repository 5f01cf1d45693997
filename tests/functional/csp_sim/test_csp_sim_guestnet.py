"""Guest network: VM addresses on ``lo`` only inside a namespace this test creates.

Network safety: nothing here configures an address outside ``unshare --net``; the namespace
has no route and no interface but ``lo``, so no packet can leave the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.csp_sim.guestnet import isolation_problems

pytestmark = [pytest.mark.functional, pytest.mark.root]
INNER = Path(__file__).with_name("guestnet_inner.py")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--net", "true"], check=False, capture_output=True, timeout=10
    )
    return probe.returncode == 0


def test_guest_addresses_live_and_die_with_the_vm_in_a_private_namespace(tmp_path: Path) -> None:
    if not _can_unshare():
        pytest.skip("needs root, unshare and ip")
    result = subprocess.run(
        ["unshare", "--net", sys.executable, str(INNER), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "before": False,
        "running": [True, True],
        "stopped": [False, False],
        "on_again": True,
        "after_host_died": [False, False],
    }


def test_guest_net_is_refused_outside_a_sealed_namespace(tmp_path: Path) -> None:
    if not isolation_problems():
        pytest.skip("this suite already runs in a sealed namespace")
    (tmp_path / "pw").write_text("x\n")
    result = subprocess.run(
        [sys.executable, "-m", "esc_orch.csp_sim", "host", "--name", "CSP-X", "--port", "0",
         "--state-dir", str(tmp_path / "s"), "--local-dir", str(tmp_path / "l"),
         "--password-file", str(tmp_path / "pw"), "--guest-net", "netns"],
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "refusing --guest-net netns" in result.stderr
    assert "READY" not in result.stdout
