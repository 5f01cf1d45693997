"""The load run (load.py) in short: 10 sessions for 20 s, asserting its invariants, not timing.

``ESC_ORCH_LOAD_SESSIONS`` and ``ESC_ORCH_LOAD_SECONDS`` make it longer; the 2-minute
50-session run and the hour-long soak are ``tests/reliability/load.py`` (docs/reliability.md).
Memory is judged with a looser slack here: 20 s is mostly warm-up, and the figure that matters
(flat over an hour) comes from the soak.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability.load import print_report, run_load

SESSIONS = int(os.environ.get("ESC_ORCH_LOAD_SESSIONS", "10"))
SECONDS = float(os.environ.get("ESC_ORCH_LOAD_SECONDS", "20"))


@pytest.mark.functional
def test_sessions_editing_with_two_subscribers_hold_every_invariant(tmp_path: Path) -> None:
    report = run_load(tmp_path, sessions=SESSIONS, seconds=SECONDS, every=1.0, rss_slack=0.25)
    print_report(report)  # the figures, with -s
    assert report.problems == []
    assert report.figures["operations_done"] >= SESSIONS  # every session did some work
    assert report.figures["events_logged"] > 0
