"""The datastore under test: SQLite always, PostgreSQL too when a server is available.

scripts/test.sh starts a local PostgreSQL (scripts/postgres.sh) and exports its URL as
ESC_ORCH_TEST_PG_URL; without it the PostgreSQL runs are skipped, except in CI where they
must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from esc_orch.store.datastore import SqlDatastore

PG_URL_ENV = "ESC_ORCH_TEST_PG_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'esc-orch.sqlite'}"
        return
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_ENV} is not set: scripts/test.sh starts PostgreSQL in CI")
        pytest.skip(f"no PostgreSQL ({PG_URL_ENV} unset; see scripts/postgres.sh)")
    engine = create_engine(url)
    # Every test starts from an empty database: every table of the test database goes, not
    # only today's models' (a table an older or newer schema left would make the store refuse
    # the database as not esc-orch's).
    with engine.begin() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        for table in list(tables):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlDatastore]:
    ds = SqlDatastore.open(url=store_url)
    yield ds
    ds.close()
