"""Emulated CSP hosts as real processes on 127.0.0.1, always killed in teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.testing.emulator import EmulatorHost

FAST = {"retries": "1", "timeout": "3", "poll_interval": "0.02"}


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[EmulatorHost]]:
    """Two hosts of one cluster (sharing tmp_path/gluster), started."""
    started = [EmulatorHost(name=f"CSP-{i}", root=tmp_path) for i in (1, 2)]
    try:
        for host in started:
            host.start()
        yield started
    finally:
        for host in started:
            host.close()
