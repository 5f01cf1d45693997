"""[metrics] and log_format in the daemon's TOML, the JSON-lines formatter, and the metrics
endpoint being off unless configured."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.request
from pathlib import Path

import pytest

from esc_orch import metrics
from esc_orch.daemon.cli import JsonLinesFormatter, build_parser
from esc_orch.daemon.config import ConfigError, LogFormat, MetricsSettings, load_config
from esc_orch.daemon.metrics_http import start_metrics_server


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "esc-orchd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_metrics_are_off_and_local_by_default(tmp_path: Path) -> None:
    assert load_config(None).metrics == MetricsSettings(bind="127.0.0.1", port=None)
    config = load_config(_toml(tmp_path, "[metrics]\nport = 9464\n"))
    assert config.metrics == MetricsSettings(bind="127.0.0.1", port=9464)
    config = load_config(_toml(tmp_path, '[metrics]\nport = 9464\nbind = "::1"\n'))
    assert config.metrics.bind == "::1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[metrics]\nport = 70000\n", "metrics.port must be an integer 0..65535"),
        ('[metrics]\nport = "x"\n', "metrics.port must be an integer 0..65535"),
        ("[metrics]\nprot = 1\n", "unknown settings ['metrics.prot']"),
        ("metrics = 3\n", "[metrics] must be a table"),
        ('log_format = "xml"\n', "log_format must be one of ['text', 'json']"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(_toml(tmp_path, text))
    assert message in str(refused.value)


def test_log_format_from_file_and_flag(tmp_path: Path) -> None:
    assert load_config(None).log_format is LogFormat.TEXT
    assert load_config(_toml(tmp_path, 'log_format = "JSON"\n')).log_format is LogFormat.JSON
    args = build_parser().parse_args(["serve", "--log-format", "json", "--metrics-port", "0"])
    assert (args.log_format, args.metrics_port) == ("json", 0)


def test_json_lines_carry_the_extras_and_the_exception() -> None:
    record = logging.makeLogRecord(
        {
            "name": "esc_orch.northbound.ssh",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "session started %s",
            "args": ("now",),
            "session": 3,
            "user": "admin",
            "created": 1_700_000_000.25,
            "msecs": 250.0,
        }
    )
    line = json.loads(JsonLinesFormatter().format(record))
    assert line == {
        "time": "2023-11-14T22:13:20.250Z",
        "level": "INFO",
        "logger": "esc_orch.northbound.ssh",
        "message": "session started now",
        "session": 3,
        "user": "admin",
    }
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    formatted = JsonLinesFormatter().format(record)
    assert "\n" not in formatted
    assert "ValueError: boom" in json.loads(formatted)["exception"]


async def test_no_endpoint_without_a_port() -> None:
    assert await start_metrics_server(MetricsSettings()) is None


async def test_endpoint_serves_the_registry_on_loopback() -> None:
    metrics.rpc_handled(operation="get-config", ok=True, seconds=0.002)
    server = await start_metrics_server(MetricsSettings(port=0))
    assert server is not None
    try:

        def get() -> str:
            url = f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as reply:
                return str(reply.read().decode())

        text = await asyncio.to_thread(get)
    finally:
        await server.stop()
    assert 'esc_orch_netconf_rpc_duration_seconds_count{operation="get-config",result="ok"}' in text


def test_the_lifecycle_hand_over_is_configurable_and_reaches_the_datastore(tmp_path: Path) -> None:
    """[lifecycle] publish_quiet / publish_max_delay: the datastore's deferred publication."""
    from esc_orch.daemon.wiring import build_backend  # noqa: PLC0415

    defaults = load_config(None).lifecycle
    assert (defaults.publish_quiet, defaults.publish_max_delay) == (0.1, 1.0)
    text = "[lifecycle]\npublish_quiet = 0\npublish_max_delay = 0.25\n[monitor]\nenabled = false\n"
    config = load_config(_toml(tmp_path, text))
    backend = build_backend(tmp_path / "data", config)
    try:
        holding = backend._publisher._holding  # type: ignore[union-attr]
        assert (holding.quiet, holding.max_delay) == (0.0, 0.25)
    finally:
        backend.close()
