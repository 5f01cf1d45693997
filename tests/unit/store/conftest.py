from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.store.datastore import SqlDatastore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlDatastore]:
    ds = SqlDatastore.open(data_dir=tmp_path)
    yield ds
    ds.close()
