"""The contract between the monitor and any KPI collector (ICMPPing, scripts, third parties).

A collector measures a batch of targets at once (so ICMP can multiplex thousands of them on
one socket) and answers every target it was given, by key: a value, or an error saying why
nothing could be measured. It never raises for a target's sake, never decides (the decision
core does), never reads the clock for the decision (the service stamps the samples).
:mod:`esc_orch.testing.collector_contract` checks any collector against these rules; the
entry-point group ``esc_orch.collectors`` makes one configurable by its ``type``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import MetricKind, Sample, Target

if TYPE_CHECKING:
    from esc_orch.monitor.definitions import MetricDefinition


@runtime_checkable
class Collector(Protocol):
    """Measures KPIs; one instance serves every VM whose KPI names its type."""

    @property
    def type_name(self) -> str:
        """The ``metric_collector/type`` it serves (e.g. ``ICMPPing``)."""
        ...

    @property
    def kind(self) -> MetricKind:
        """How its values are read: success/failure, or a threshold number."""
        ...

    async def collect(self, targets: Sequence[Target]) -> Mapping[str, Sample]:
        """One sample per target, keyed by :attr:`Target.key`; never raises for a target."""
        ...

    async def aclose(self) -> None:
        """Release sockets and processes. Idempotent."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorContext:
    """What a collector factory is given: the probe policy, and a metric definition if any."""

    allowed: AllowedNetworks = field(default_factory=AllowedNetworks.default)
    definition: MetricDefinition | None = None
    #: The collector's own settings (e.g. ICMPPing's ``mode``), from the daemon configuration.
    settings: Mapping[str, str] = field(default_factory=dict)


class CollectorFactory(Protocol):
    """What an ``esc_orch.collectors`` entry point names."""

    def __call__(self, *, context: CollectorContext) -> Collector: ...
