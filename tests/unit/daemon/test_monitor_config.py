"""``[monitor]`` of the daemon's TOML: allowed probe networks, scripts, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_orch.daemon.config import ConfigError, load_config


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "esc-orchd.toml"
    path.write_text(text)
    return load_config(path)


def test_defaults_allow_only_loopback(tmp_path: Path) -> None:
    monitor = _load(tmp_path, "").monitor
    assert monitor.allowed_networks == ("127.0.0.0/8",)
    assert monitor.allowed.check("127.0.0.9") is None
    refused = monitor.allowed.check("192.168.23.62")
    assert refused is not None and "allowed_networks (127.0.0.0/8)" in str(refused)


def test_monitoring_is_on_unless_turned_off(tmp_path: Path) -> None:
    assert _load(tmp_path, "").monitor.enabled
    assert not _load(tmp_path, "[monitor]\nenabled = false\n").monitor.enabled


def test_a_full_monitor_table(tmp_path: Path) -> None:
    monitor = _load(
        tmp_path,
        '[monitor]\nallowed_networks = ["127.0.0.0/8", "192.168.23.0/24"]\n'
        'scripts_dir = "/etc/s"\nmetrics_dir = "/etc/m"\nscript_timeout = 5\n'
        'vim_interval = 2.5\nicmp_mode = "dgram"\n',
    ).monitor
    assert monitor.allowed.check("192.168.23.62") is None
    assert monitor.scripts_dir == Path("/etc/s") and monitor.metrics_dir == Path("/etc/m")
    assert (monitor.script_timeout, monitor.vim_interval, monitor.icmp_mode) == (5, 2.5, "dgram")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('allowed_networks = ["10.0.0.1/8"]', "not a CIDR prefix"),
        ('allowed_networks = "127.0.0.0/8"', "must be a list"),
        ("script_timeout = 0", "positive number"),
        ('icmp_mode = "magic"', "icmp_mode must be one of"),
        ("ping = 1", "unknown settings ['monitor.ping']"),
        ("scripts_dir = 3", "directory path"),
        ('enabled = "no"', "monitor.enabled must be true or false"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r".*") as err:
        _load(tmp_path, f"[monitor]\n{text}\n")
    assert needle in str(err.value)
