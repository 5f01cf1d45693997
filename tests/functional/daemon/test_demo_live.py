"""The README's demo (``bash scripts/demo.sh`` runs ``python -m esc_orch.demo``), run whole.

Why: the demo is the project's front door and nothing else ran it. A merge that made the
supervisor know a killed host as down (so an edit placing a group on it right after its return
is refused until the return is noticed) broke its scenario 3 without any test failing.

It runs in a private network namespace where it can make one (scenario 2 pings the seed's
192.168.23.61 there only); without one it runs scenarios 1 and 3. The checks are the outcomes
a reader of the demo looks for, in order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[3]


def test_the_demo_runs_every_scenario_to_its_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "esc_orch.demo", "--data-dir", str(tmp_path / "demo")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, (out[-4000:], done.stderr[-4000:])
    expected = ["Scenario 1: move Group1 to CSP-2", "VM_UPDATED  SUCCESS"]
    if "scenario 2 (it pings 192.168.23.61) is skipped" not in out:
        expected += [
            "VM_RECOVERY_INIT  SUCCESS",
            "VM_RECOVERY_REBOOT  FAILURE",
            "VM_RECOVERY_COMPLETE  FAILURE",
            "Scenario 2: the locator moves Group1 to CSP-2",
            "VIM Locator Updated Successfully",
            "eo:stale-copy-removed",
        ]
    expected += ["Scenario 3: locator CSP-1-cluster", "SERVICE_UPDATED", "demo done in"]
    at = 0
    for text in expected:
        found = out.find(text, at)
        assert found >= 0, f"{text!r} not in the demo's output after offset {at}"
        at = found + len(text)
