"""Admission of unauthenticated connections and the rate-limited refusal log (defect 2)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from esc_orch.daemon.config import ConfigError, load_config
from esc_orch.northbound.admission import ConnectionGate, RateLimitedLog, Refusal


def test_gate_limits_in_total_and_per_source() -> None:
    gate = ConnectionGate(max_total=3, max_per_source=2)
    assert gate.admit("a") is None
    assert gate.admit("a") is None
    assert gate.admit("a") is Refusal.PER_SOURCE
    assert gate.admit("b") is None
    assert gate.admit("c") is Refusal.TOTAL
    gate.authenticated("a")  # a logged-in connection no longer counts
    assert gate.pending == 2
    assert gate.admit("c") is None
    gate.closed("c")
    gate.closed("c")  # idempotent below zero
    assert gate.pending_from("c") == 0
    assert gate.pending == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_log_one_line_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    limited = RateLimitedLog(logging.getLogger("test.gate"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.gate"):
        logged = [limited.warning("connection refused", {"peer": "x"}) for _ in range(1000)]
        clock.now = 10.5
        limited.warning("connection refused", {"peer": "x"})
    assert logged.count(True) == 1
    assert len(caplog.records) == 2
    assert caplog.records[1].__dict__["suppressed"] == 999


@pytest.mark.parametrize(
    "line", ["max_preauth_connections = 0", "max_preauth_per_source = 0", "max_rpc_attributes = 0"]
)
def test_limits_that_would_refuse_everything_are_config_errors(tmp_path: Path, line: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[limits]\n{line}\n")
    with pytest.raises(ConfigError, match="must be > 0"):
        load_config(path)


def test_the_new_limits_are_read_from_the_daemon_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[limits]\nmax_preauth_connections = 10\nmax_preauth_per_source = 2\n"
        "login_grace_time = 7.5\nmax_rpc_attributes = 8\nmax_attribute_bytes = 100\n"
        "max_filter_nodes = 50\n"
    )
    limits = load_config(path).limits
    assert (limits.max_preauth_connections, limits.max_preauth_per_source) == (10, 2)
    assert (limits.login_grace_time, limits.max_rpc_attributes) == (7.5, 8)
    assert (limits.max_attribute_bytes, limits.max_filter_nodes) == (100, 50)
