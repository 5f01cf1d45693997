"""Collector types: built-ins found through the ``esc_orch.collectors`` entry points, plus the
custom metrics of the daemon's metric definitions.

The edit-time validator takes :func:`known_collector_types` as its input, so a payload naming
a type the daemon cannot run is refused with the list of known ones
(:func:`check_collector_type`); the service builds collectors with :func:`create_collector`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from esc_orch.monitor.collectors.protocol import Collector, CollectorContext, CollectorFactory
from esc_orch.monitor.definitions import MetricDefinition
from esc_orch.monitor.types import MetricKind

ENTRY_POINT_GROUP = "esc_orch.collectors"


class UnknownCollectorType(LookupError):
    def __init__(self, type_name: str, known: list[str]) -> None:
        super().__init__(unknown_type_message(type_name, known))
        self.type_name = type_name
        self.known = known


def unknown_type_message(type_name: str, known: list[str]) -> str:
    shown = ", ".join(known) or "none installed"
    return f"unknown metric_collector type {type_name!r} (known types: {shown})"


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def builtin_types() -> frozenset[str]:
    """Types of installed collectors (entry points), as payloads spell them (``ICMPPing``)."""
    return frozenset(_entry_points())


def known_collector_types(
    definitions: Mapping[str, MetricDefinition] | None = None,
) -> frozenset[str]:
    """Every ``metric_collector/type`` the daemon can run: built-ins and custom metrics."""
    return builtin_types() | frozenset(definitions or {})


def check_collector_type(type_name: str, known: frozenset[str]) -> str | None:
    """``None`` when known; else the sentence to refuse the payload with."""
    return None if type_name in known else unknown_type_message(type_name, sorted(known))


def collector_factory(type_name: str) -> CollectorFactory:
    eps = _entry_points()
    ep = eps.get(type_name)
    if ep is None:
        raise UnknownCollectorType(type_name, sorted(eps))
    return cast(CollectorFactory, ep.load())


def collector_kind(
    type_name: str, definitions: Mapping[str, MetricDefinition] | None = None
) -> MetricKind:
    """How values of ``type_name`` are read (needed to build a KPI's spec)."""
    definition = (definitions or {}).get(type_name)
    if definition is not None:
        return definition.kind
    factory = collector_factory(type_name)
    return MetricKind(getattr(factory, "kind", MetricKind.THRESHOLD))


def create_collector(
    type_name: str,
    *,
    context: CollectorContext,
    definitions: Mapping[str, MetricDefinition] | None = None,
) -> Collector:
    """A collector for ``type_name``: a custom metric's script, or an installed collector."""
    definition = (definitions or {}).get(type_name)
    if definition is not None:
        from esc_orch.monitor.collectors.script import ScriptCollector  # noqa: PLC0415

        return ScriptCollector(context=replace(context, definition=definition))
    known = sorted(known_collector_types(definitions))
    if type_name not in _entry_points():
        raise UnknownCollectorType(type_name, known)
    return collector_factory(type_name)(context=context)
