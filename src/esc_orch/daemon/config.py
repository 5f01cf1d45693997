"""The daemon's configuration: a small TOML file, overridden by command-line options.

Kept separate from the CLI so the same typed :class:`DaemonConfig` is built by tests, by
``esc-orchd serve`` and by the wiring of the datastore.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from esc_orch.monitor.targets import DEFAULT_ALLOWED_NETWORKS, AllowedNetworks
from esc_orch.northbound.core import Limits
from esc_orch.northbound.notifications import NotificationLimits

DEFAULT_PORT = 830
DEFAULT_BIND = "127.0.0.1"


class ConfigError(Exception):
    """The configuration file is unreadable or holds an invalid value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationSettings:
    """``[notifications]``: delivery limits and the retention of the event log."""

    queue_size: int = 10_000  # per subscription; overflow closes that session
    max_age_days: float = 30.0  # events older than this are pruned; 0 = keep forever
    max_events: int = 1_000_000  # only the newest N events are kept; 0 = no limit
    prune_interval: float = 300.0  # seconds between background prunes

    @property
    def limits(self) -> NotificationLimits:
        return NotificationLimits(queue_size=self.queue_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class VimSettings:
    """``[vim]``: how VIM connectors are checked."""

    check_interval: float = 60.0  # seconds between checks of every connector
    check_timeout: float = 10.0  # seconds a connector may take to describe its host
    #: Seconds between checks of a connector whose last check failed: a host that returns
    #: with a stale copy (which it may autostart) is seen, and the copy removed, this soon.
    down_check_interval: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleSettings:
    """``[lifecycle]``: how deployments are converged (daemon/lifecycle.py)."""

    resync_interval: float = 300.0  # seconds between resyncs of healthy deployments
    max_parallel: int = 4  # deployments converging at once
    retry_attempts: int = 5  # tries per VIM call, and re-observations of a blocked plan
    retry_base_delay: float = 1.0  # seconds before the first retry, doubling
    retry_max_delay: float = 30.0  # cap of the retry delay
    #: Seconds a move away from a silent host waits for proof that the old copy cannot run
    #: (fenced, confirmed down, disk lock free) before FAILURE (docs/fencing.md).
    proof_timeout: float = 60.0
    #: Seconds one observation of a connector may take (a silent host must not stall a run).
    observe_timeout: float = 10.0
    #: First delay before an errored deployment is tried again, doubling up to resync_interval.
    error_retry_delay: float = 10.0
    #: Seconds a group move waits for the VM it moved to be alive on its target (its KPI, or
    #: running when unmonitored) before it moves the next one; then FAILURE.
    move_alive_timeout: float = 300.0
    #: Seconds without a new commit before committed changes reach the lifecycle, and the most
    #: the oldest may wait (NETCONF replies first; store/datastore_publish.py). 0 and 0 hand
    #: each change over at once, at the cost of edit latency under a stream of edits.
    publish_quiet: float = 0.1
    publish_max_delay: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    """``[metrics]``: the Prometheus endpoint (daemon/metrics_http.py); off without a port."""

    bind: str = DEFAULT_BIND
    port: int | None = None  # None: no endpoint; 0: any free port (tests)


class LogFormat(StrEnum):
    TEXT = "text"  # one readable key=value line per record
    JSON = "json"  # one JSON object per line (journald, ELK)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSettings:
    """``[monitor]``: where probes may go, operator scripts and metrics (docs/monitoring.md)."""

    #: false: no KPI is polled, no recovery runs, VM_ALIVE when a VM is first seen running,
    #: and probe targets are not checked at edit time (nothing will be probed).
    enabled: bool = True
    allowed_networks: tuple[str, ...] = DEFAULT_ALLOWED_NETWORKS  # CIDR prefixes probes may target
    scripts_dir: Path | None = None  # rule action scripts ("TRUE servicebooted.sh")
    metrics_dir: Path | None = None  # custom metric definitions (*.toml)
    script_timeout: float = 30.0  # seconds a rule script may run
    vim_interval: float = 15.0  # seconds between checks of the VIM's own view of each VM
    icmp_mode: str = "auto"  # ICMPPing socket: auto (raw as root), raw, dgram

    @property
    def allowed(self) -> AllowedNetworks:
        return AllowedNetworks.parse(self.allowed_networks)


_ICMP_MODES = {"auto", "raw", "dgram"}


def _monitor(path: Path, raw: dict[str, Any]) -> MonitorSettings:
    values = raw.get("monitor", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [monitor] must be a table")
    unknown = set(values) - {f for f in MonitorSettings.__dataclass_fields__}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(f'monitor.{k}' for k in unknown)}")
    out: dict[str, Any] = {}
    if "enabled" in values:
        if not isinstance(values["enabled"], bool):
            raise ConfigError(f"{path}: monitor.enabled must be true or false")
        out["enabled"] = values["enabled"]
    if "allowed_networks" in values:
        nets = values["allowed_networks"]
        if not isinstance(nets, list) or not all(isinstance(n, str) for n in nets):
            raise ConfigError(f"{path}: monitor.allowed_networks must be a list of CIDR strings")
        try:
            out["allowed_networks"] = AllowedNetworks.parse(nets).texts
        except ValueError as exc:
            raise ConfigError(f"{path}: monitor.{exc}") from None
    for key in ("scripts_dir", "metrics_dir"):
        if key in values:
            if not isinstance(values[key], str) or not values[key]:
                raise ConfigError(f"{path}: monitor.{key} must be a directory path")
            out[key] = Path(values[key])
    for key in ("script_timeout", "vim_interval"):
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{path}: monitor.{key} must be a positive number")
            out[key] = float(value)
    if "icmp_mode" in values:
        if values["icmp_mode"] not in _ICMP_MODES:
            raise ConfigError(f"{path}: monitor.icmp_mode must be one of {sorted(_ICMP_MODES)}")
        out["icmp_mode"] = values["icmp_mode"]
    return MonitorSettings(**out)


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    data_dir: Path | None = None
    bind: str = DEFAULT_BIND
    port: int = DEFAULT_PORT
    log_level: str = "info"
    log_format: LogFormat = LogFormat.TEXT
    limits: Limits = field(default_factory=Limits)
    store: dict[str, Any] = field(default_factory=dict)  # [store] table, for the datastore
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    vim: VimSettings = field(default_factory=VimSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)


_LIMIT_KEYS = {
    "max_message_size": int,
    "hello_timeout": float,
    "idle_timeout": float,
    "message_timeout": float,
    "max_sessions": int,
    "max_rpc_attributes": int,
    "max_attribute_bytes": int,
    "max_filter_nodes": int,
    "max_preauth_connections": int,
    "max_preauth_per_source": int,
    "login_grace_time": float,
}
_NOTIFICATION_KEYS = {
    "queue_size": int,
    "max_age_days": float,
    "max_events": int,
    "prune_interval": float,
}
_VIM_KEYS: dict[str, type] = {
    "check_interval": float,
    "check_timeout": float,
    "down_check_interval": float,
}
_LIFECYCLE_KEYS: dict[str, type] = {
    "resync_interval": float,
    "max_parallel": int,
    "retry_attempts": int,
    "retry_base_delay": float,
    "retry_max_delay": float,
    "proof_timeout": float,
    "move_alive_timeout": float,
    "observe_timeout": float,
    "error_retry_delay": float,
    "publish_quiet": float,
    "publish_max_delay": float,
}
_LOG_LEVELS = {"debug", "info", "warning", "error"}


def _numbers(path: Path, raw: dict[str, Any], table: str, keys: dict[str, type]) -> dict[str, Any]:
    """The non-negative numbers of one table, each converted to its key's type."""
    values = raw.get(table, {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{table}] must be a table")
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = keys.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown setting {table}.{key}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{path}: {table}.{key} must be a non-negative number")
        out[key] = kind(value)
    return out


def load_config(path: Path | None) -> DaemonConfig:
    """Read ``path`` (TOML) into a :class:`DaemonConfig`; ``None`` gives the defaults."""
    if path is None:
        return DaemonConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    known = {
        "bind",
        "port",
        "data_dir",
        "log_level",
        "log_format",
        "limits",
        "store",
        "notifications",
        "vim",
        "lifecycle",
        "metrics",
        "monitor",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    limits = _numbers(path, raw, "limits", _LIMIT_KEYS)
    positive = (
        "max_message_size",
        "max_sessions",
        "max_rpc_attributes",
        "max_attribute_bytes",
        "max_filter_nodes",
        "max_preauth_connections",
        "max_preauth_per_source",
    )
    zero = sorted(k for k in positive if limits.get(k) == 0)
    if zero:
        raise ConfigError(f"{path}: limits {', '.join(zero)} must be > 0")
    notifications = _numbers(path, raw, "notifications", _NOTIFICATION_KEYS)
    if notifications.get("queue_size") == 0 or notifications.get("prune_interval") == 0:
        raise ConfigError(f"{path}: notifications.queue_size and prune_interval must be > 0")
    vim = _numbers(path, raw, "vim", _VIM_KEYS)
    if any(vim.get(k) == 0 for k in _VIM_KEYS):
        raise ConfigError(
            f"{path}: vim.check_interval, check_timeout and down_check_interval must be > 0"
        )
    lifecycle = _numbers(path, raw, "lifecycle", _LIFECYCLE_KEYS)
    positive_lifecycle = (
        "resync_interval",
        "max_parallel",
        "retry_attempts",
        "proof_timeout",
        "observe_timeout",
        "error_retry_delay",
        "move_alive_timeout",
    )
    if any(lifecycle.get(k) == 0 for k in positive_lifecycle):
        raise ConfigError(f"{path}: lifecycle.{', '.join(positive_lifecycle)} must be > 0")
    config = DaemonConfig(
        metrics=_metrics(path, raw),
        monitor=_monitor(path, raw),
        lifecycle=LifecycleSettings(**lifecycle),
        vim=VimSettings(**vim),
        limits=Limits(**limits),
        store=dict(raw.get("store", {})),
        notifications=NotificationSettings(**notifications),
    )
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
    if "log_format" in raw:
        try:
            config = replace(config, log_format=LogFormat(str(raw["log_format"]).lower()))
        except ValueError:
            choices = [str(f) for f in LogFormat]
            raise ConfigError(f"{path}: log_format must be one of {choices}") from None
    return config


def _port(path: Path, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{path}: {name} must be an integer 0..65535")
    return value


def _metrics(path: Path, raw: dict[str, Any]) -> MetricsSettings:
    values = raw.get("metrics", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [metrics] must be a table")
    unknown = set(values) - {"bind", "port"}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(f'metrics.{k}' for k in unknown)}")
    settings = MetricsSettings()
    if "bind" in values:
        settings = replace(settings, bind=str(values["bind"]))
    if "port" in values:
        settings = replace(settings, port=_port(path, "metrics.port", values["port"]))
    return settings
