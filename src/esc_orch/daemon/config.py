"""The daemon's configuration: a small TOML file, overridden by command-line options.

Kept separate from the CLI so the same typed :class:`DaemonConfig` is built by tests, by
``esc-orchd serve`` and by the wiring of the datastore.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from esc_orch.northbound.core import Limits

DEFAULT_PORT = 830
DEFAULT_BIND = "127.0.0.1"


class ConfigError(Exception):
    """The configuration file is unreadable or holds an invalid value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    data_dir: Path | None = None
    bind: str = DEFAULT_BIND
    port: int = DEFAULT_PORT
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)
    store: dict[str, Any] = field(default_factory=dict)  # [store] table, for the datastore


_LIMIT_KEYS = {
    "max_message_size": int,
    "hello_timeout": float,
    "idle_timeout": float,
    "message_timeout": float,
    "max_sessions": int,
}
_LOG_LEVELS = {"debug", "info", "warning", "error"}


def load_config(path: Path | None) -> DaemonConfig:
    """Read ``path`` (TOML) into a :class:`DaemonConfig`; ``None`` gives the defaults."""
    if path is None:
        return DaemonConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    known = {"bind", "port", "data_dir", "log_level", "limits", "store"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    limits_raw = raw.get("limits", {})
    if not isinstance(limits_raw, dict):
        raise ConfigError(f"{path}: [limits] must be a table")
    limits: dict[str, Any] = {}
    for key, value in limits_raw.items():
        kind = _LIMIT_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown limit {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{path}: limits.{key} must be a non-negative number")
        limits[key] = kind(value)
    config = DaemonConfig(limits=Limits(**limits), store=dict(raw.get("store", {})))
    if "data_dir" in raw:
        config = replace(config, data_dir=Path(str(raw["data_dir"])))
    if "bind" in raw:
        config = replace(config, bind=str(raw["bind"]))
    if "port" in raw:
        port = raw["port"]
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"{path}: port must be an integer 0..65535")
        config = replace(config, port=port)
    if "log_level" in raw:
        level = str(raw["log_level"]).lower()
        if level not in _LOG_LEVELS:
            raise ConfigError(f"{path}: log_level must be one of {sorted(_LOG_LEVELS)}")
        config = replace(config, log_level=level)
    return config
