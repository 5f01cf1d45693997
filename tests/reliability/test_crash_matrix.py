"""The crash-point matrix under pytest (see matrix.py): a subset in CI, all of it on demand.

``ESC_ORCH_CRASH_MATRIX=full .venv/bin/python -m pytest tests/reliability -q`` runs every cell;
without it the representative :data:`reliability.matrix.CI_CELLS` (a few minutes on 2 cores).
A cell whose point the operation does not reach is not collected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability.crashkit import OPERATIONS
from reliability.matrix import CI_CELLS, COLUMNS, cells, run_cell

FULL = os.environ.get("ESC_ORCH_CRASH_MATRIX") == "full"
_BY_NAME = {c.name: c for c in COLUMNS}

CELLS = [
    (op, col.name)
    for op, col in cells()
    if col.points(OPERATIONS[op]) is not None and (FULL or (op, col.name) in CI_CELLS)
]


@pytest.mark.parametrize(("operation", "column"), CELLS, ids=[f"{o}@{c}" for o, c in CELLS])
def test_crash_point_holds(tmp_path: Path, operation: str, column: str) -> None:
    result = run_cell(tmp_path, operation, _BY_NAME[column])
    assert result is not None
    assert result.fired, f"{operation} never reached {column}"
    assert result.problems == [], result.problems
