"""The crash-point matrix with the daemon on PostgreSQL: a bounded form (see matrix.py).

The same trials as test_crash_matrix.py, the daemon's ``[store] url`` pointing at PostgreSQL:
its journal, records and event log are the same SQL in another database's transactions, and a
kill -9 there must hold the same invariants. The database is scripts/test.sh's
(``ESC_ORCH_TEST_PG_URL``), in a private schema ``esc_orch_faults`` dropped and made again
for every cell, so the datastore tests' tables (schema ``public``) are never touched.

``ESC_ORCH_CRASH_MATRIX_PG=full`` runs every cell, ``=six`` :data:`PG_SIX`; by default
:data:`PG_CELLS`.
Without PostgreSQL the tests skip (and fail in CI, as the datastore tests do).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reliability import crashkit
from reliability.crashkit import OPERATIONS
from reliability.matrix import COLUMNS, cells, run_cell

PG_URL_ENV = "ESC_ORCH_TEST_PG_URL"
SCHEMA = "esc_orch_faults"
FULL = os.environ.get("ESC_ORCH_CRASH_MATRIX_PG") == "full"
_BY_NAME = {c.name: c for c in COLUMNS}

#: Three kinds of crash point over the operations that write most (about 2 minutes); the six
#: of ``ESC_ORCH_CRASH_MATRIX_PG=six`` add a move, an undeploy and a double crash.
PG_CELLS = (
    ("deploy", "after-intent"),
    ("update-flavor", "between-calls-2"),
    ("serviceAction-STOP", "after-event-1"),
)
PG_SIX = (
    *PG_CELLS,
    ("update-locator", "before-outcome"),
    ("undeploy", "after-outcome"),
    ("vmAction-REBOOT", "twice"),
)
SIX = os.environ.get("ESC_ORCH_CRASH_MATRIX_PG") == "six"
_CHOSEN = PG_SIX if SIX else PG_CELLS
CELLS = [
    (op, col.name)
    for op, col in cells()
    if col.points(OPERATIONS[op]) is not None and (FULL or (op, col.name) in _CHOSEN)
]


def private_schema_url(url: str) -> str:
    """``url`` with the search path set to :data:`SCHEMA` (psycopg's ``options``)."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={SCHEMA}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def pg_store() -> Iterator[str]:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_ENV} is not set: scripts/test.sh starts PostgreSQL in CI")
        pytest.skip(f"no PostgreSQL ({PG_URL_ENV} unset; see scripts/postgres.sh)")
    engine = create_engine(url)
    with engine.begin() as conn:  # a fresh, empty schema of our own for this cell
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    engine.dispose()
    crashkit.STORE_URL = private_schema_url(url)
    try:
        yield crashkit.STORE_URL
    finally:
        crashkit.STORE_URL = None


@pytest.mark.parametrize(("operation", "column"), CELLS, ids=[f"{o}@{c}" for o, c in CELLS])
def test_crash_point_holds_on_postgresql(
    tmp_path: Path, pg_store: str, operation: str, column: str
) -> None:
    result = run_cell(tmp_path, operation, _BY_NAME[column])
    assert result is not None
    assert result.fired, f"{operation} never reached {column}"
    assert result.problems == [], result.problems
    assert not (tmp_path / "orchd" / "esc-orch.sqlite").exists(), "the daemon used SQLite"
