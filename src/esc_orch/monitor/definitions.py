"""Custom metrics, as ESC operators register them: a directory of definition files.

ESC lets an operator add a metric (a name, a kind — success/failure or threshold — a script
and its default properties); payloads then name it as ``metric_collector/type`` and may
override the properties. Here each metric is one TOML file of ``[monitor] metrics_dir``::

    name = "CPU_LOAD"
    kind = "threshold"          # or "success_failure" (ESC: MONITOR_THRESHOLD, ...)
    script = "cpu_load.sh"      # relative to this file's directory, or absolute
    timeout = 10                # seconds (default 10)
    [properties]                # defaults, overridden by the payload's properties
    port = "22"

A threshold script prints the value as the last line of its stdout; a success/failure script
answers by its exit code (0 = success).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from esc_orch.monitor.types import MetricKind

_KINDS = {
    "success_failure": MetricKind.SUCCESS_FAILURE,
    "monitor_success_failure": MetricKind.SUCCESS_FAILURE,
    "threshold": MetricKind.THRESHOLD,
    "monitor_threshold": MetricKind.THRESHOLD,
}
_KEYS = {"name", "kind", "script", "timeout", "properties", "description"}


class DefinitionError(ValueError):
    """A metric definition file that cannot be used (the daemon refuses to start with it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricDefinition:
    name: str
    kind: MetricKind
    script: Path
    timeout: float = 10.0
    properties: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    source: Path | None = None


def parse_definition(path: Path, text: str) -> MetricDefinition:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{path}: {exc}") from None
    unknown = set(raw) - _KEYS
    if unknown:
        raise DefinitionError(f"{path}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise DefinitionError(f"{path}: name must be one word")
    kind = _KINDS.get(str(raw.get("kind", "")).strip().lower())
    if kind is None:
        raise DefinitionError(f"{path}: kind must be one of {sorted(set(_KINDS))}")
    script = raw.get("script")
    if not isinstance(script, str) or not script:
        raise DefinitionError(f"{path}: script is required")
    script_path = Path(script) if Path(script).is_absolute() else path.parent / script
    timeout = raw.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise DefinitionError(f"{path}: timeout must be a positive number of seconds")
    props = raw.get("properties", {})
    if not isinstance(props, dict):
        raise DefinitionError(f"{path}: [properties] must be a table")
    return MetricDefinition(
        name=name, kind=kind, script=script_path, timeout=float(timeout),
        properties={str(k): str(v) for k, v in props.items()},
        description=str(raw.get("description", "")), source=path,
    )  # fmt: skip


def load_definitions(
    directory: Path | None, *, reserved: frozenset[str] = frozenset()
) -> dict[str, MetricDefinition]:
    """Every ``*.toml`` of ``directory`` by metric name; raises :class:`DefinitionError`.

    A name that a built-in collector already has (``reserved``), or that two files share, is
    an error: the type a payload names must mean one thing.
    """
    if directory is None:
        return {}
    if not directory.is_dir():
        raise DefinitionError(f"metrics directory {directory} does not exist")
    found: dict[str, MetricDefinition] = {}
    for path in sorted(directory.glob("*.toml")):
        definition = parse_definition(path, path.read_text(encoding="utf-8"))
        if definition.name in reserved:
            raise DefinitionError(f"{path}: {definition.name!r} is a built-in collector type")
        if definition.name in found:
            first = found[definition.name].source
            raise DefinitionError(f"{path}: metric {definition.name!r} already defined in {first}")
        if not definition.script.is_file():
            raise DefinitionError(f"{path}: script {definition.script} does not exist")
        found[definition.name] = definition
    return found
