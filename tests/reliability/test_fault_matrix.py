"""The fault matrix under pytest (see faults.py): a few cells in CI, all of it on demand.

``ESC_ORCH_FAULT_MATRIX=full .venv/bin/python -m pytest tests/reliability/test_fault_matrix.py``
runs every cell of the default steps; without it :data:`reliability.faults.CI_CELLS` (one cell
per kind of fault, about a minute on 2 cores). A cell whose step the operation does not have is
not collected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability.faultkit import FAULTS
from reliability.faults import CI_CELLS, DEFAULT_STEPS, OPERATIONS, point, run_cell

FULL = os.environ.get("ESC_ORCH_FAULT_MATRIX") == "full"

CELLS = [
    (op, fault, step)
    for op in OPERATIONS
    for fault in FAULTS
    for step in DEFAULT_STEPS
    if point(op, step) is not None and (FULL or (op, fault, step) in CI_CELLS)
]


@pytest.mark.parametrize(
    ("operation", "fault", "step"), CELLS, ids=[f"{o}-{f}@{s}" for o, f, s in CELLS]
)
def test_fault_at_a_step_holds(tmp_path: Path, operation: str, fault: str, step: str) -> None:
    result = run_cell(tmp_path, operation, fault, step)
    assert result is not None
    assert result.reached, f"{operation} never reached {step}"
    assert result.problems == [], (result.problems, result.events)
