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
from esc_orch.store.migrate import VERSION_TABLE
from esc_orch.store.tables import Base

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
    Base.metadata.drop_all(engine)  # every test starts from an empty database
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    engine.dispose()
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlDatastore]:
    ds = SqlDatastore.open(url=store_url)
    yield ds
    ds.close()
