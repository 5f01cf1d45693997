"""The crash matrix's recovery rows, bounded, inside a private network namespace (CI as root).

Recovery needs the VM's address to answer ping, so ``matrix.py --recovery`` runs its trials
under ``unshare --net`` (only ``lo``): the hosts put running VMs' addresses there, the daemon
monitors them. CI runs :data:`CELLS` (a monitoring-driven recovery killed after its step's
intent, before its outcome, right after VM_RECOVERY_INIT and right after VM_RECOVERY_REBOOT
were logged; about 20 s a cell, under 2 minutes on a loaded 2-core machine); the whole
rows: ``.venv/bin/python tests/reliability/matrix.py --recovery``. A machine that cannot
make a namespace skips (fails under CI as root), as the live monitoring tests do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.testing.netns import require_netns

pytestmark = [pytest.mark.functional, pytest.mark.root]
MATRIX = Path(__file__).with_name("matrix.py")
CELLS = (
    # both found by the matrix: COMPLETE FAILURE for a VM that was alive again
    ("recovery-vm-down", "before-outcome"),
    ("recovery-vm-down", "recovery-book-2"),
    # both found by the matrix: the start-up resync started the VM the crash left off
    # (VM_STARTED, SERVICE_UPDATED) instead of the recovery running its cut step again
    ("recovery-vm-down", "after-intent"),
    ("recovery-vm-down", "recovery-book-1"),
)


def test_recovery_killed_at_its_failpoints_holds() -> None:
    require_netns()
    ops = ",".join(dict.fromkeys(op for op, _ in CELLS))
    cols = ",".join(dict.fromkeys(col for _, col in CELLS))
    done = subprocess.run(
        [sys.executable, str(MATRIX), "--recovery", "--only", ops, "--columns", cols],
        check=False, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout + done.stderr
    for op, col in CELLS:
        assert f"{op} @ {col}: pass" in out, out[-4000:]
    assert done.returncode == 0, out[-4000:]
