"""The monitoring vocabulary: what is watched, what a collector measures, what rules say.

Frozen values only, shared by the pure decision core (:mod:`esc_orch.monitor.decision`), the
collectors and the service loop, so a test can build any situation without I/O. Times are
float seconds on the service's clock (wall-clock epoch seconds in the daemon, so a snapshot
taken before a restart still means something after it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# One concept, one type: the recovery policy (below us) defines why a recovery is asked for.
from esc_orch.reconcile.recovery import TriggerCause as TriggerCause  # noqa: PLC0414


class MetricKind(StrEnum):
    """How a sample becomes a condition: ESC's two kinds of metric."""

    #: The sample is success (true) or failure (false); metric_value/metric_cond are ignored.
    SUCCESS_FAILURE = "success_failure"
    #: The sample is a number compared with ``metric_value`` by ``metric_cond``.
    THRESHOLD = "threshold"


class MetricCond(StrEnum):
    GT = "GT"
    LT = "LT"
    EQ = "EQ"
    GE = "GE"
    LE = "LE"


class Edge(StrEnum):
    """When a rule action runs: on the KPI turning true, turning false, or on both."""

    TRUE = "TRUE"
    FALSE = "FALSE"
    ALWAYS = "ALWAYS"


class RuleActionKind(StrEnum):
    LOG = "log"
    RECOVER = "recover"  # "recover autohealing"
    SCRIPT = "script"  # a script of the configured scripts directory
    ALIVE_NOTIFICATION = "alive-notification"  # ESC's esc_vm_alive_notification built-in
    UNSUPPORTED = "unsupported"  # accepted; reported as unsupported when it fires


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleAction:
    """One ``rules/admin_rules/rule/action`` entry, parsed (``"FALSE recover autohealing"``)."""

    edge: Edge
    kind: RuleActionKind
    #: The script's name, or the words of an unsupported action.
    argument: str = ""
    text: str = ""  # the action as configured, for reports

    def fires_on(self, edge: Edge) -> bool:
        return self.edge is Edge.ALWAYS or self.edge is edge


class VimView(StrEnum):
    """What the VIM itself says about a VM (the second signal beside the KPIs)."""

    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    ABSENT = "absent"
    HOST_UNREACHABLE = "host-unreachable"

    @property
    def fault(self) -> TriggerCause | None:
        return {
            VimView.STOPPED: TriggerCause.VM_STOPPED,
            VimView.ERROR: TriggerCause.VM_ERROR,
            VimView.ABSENT: TriggerCause.VM_ABSENT,
            VimView.HOST_UNREACHABLE: TriggerCause.HOST_DOWN,
        }.get(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiSpec:
    """One ``kpi_data/kpi`` of a VM, resolved (collector kind known, address looked up)."""

    event_name: str
    collector_type: str
    kind: MetricKind
    metric_value: float = 0
    metric_cond: MetricCond = MetricCond.GT
    metric_type: str = "UINT32"
    occurrences_true: int = 1
    occurrences_false: int = 1
    poll_seconds: float = 3.0
    continuous_alarm: bool = False
    nicid: int | None = None
    #: The address of the interface named by ``nicid`` (what ICMPPing probes).
    address: str | None = None
    #: The collector's properties: the metric definition's defaults, overridden by the payload.
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurrences_true < 1 or self.occurrences_false < 1:
            raise ValueError("metric_occurrences_true/false must be >= 1")
        if self.poll_seconds <= 0:
            raise ValueError("poll_frequency must be > 0")

    def holds(self, value: float) -> bool:
        """The condition of one sample's value."""
        if self.kind is MetricKind.SUCCESS_FAILURE:
            return value != 0
        limit = self.metric_value
        match self.metric_cond:
            case MetricCond.GT:
                return value > limit
            case MetricCond.LT:
                return value < limit
            case MetricCond.EQ:
                return value == limit
            case MetricCond.GE:
                return value >= limit
            case MetricCond.LE:
                return value <= limit


#: The KPI whose first TRUE edge makes a VM alive (ESC's convention); else the first KPI.
ALIVE_EVENT = "VM_ALIVE"


@dataclass(frozen=True, slots=True, kw_only=True)
class VmWatch:
    """Everything the monitor needs to watch one VM (from the deployment record)."""

    vm_name: str
    tenant: str
    deployment: str
    group: str
    connector_id: str
    #: ENABLE_MONITOR / DISABLE_MONITOR; a deployment being updated is paused too.
    enabled: bool = True
    paused: bool = False
    #: ``kpi_data/enabled``: false keeps the KPIs configured but unpolled.
    kpi_enabled: bool = True
    #: Seconds to be alive after ``since``; negative means "not monitored" (ESC's -1).
    bootup_time: float = 600
    recovery_wait_time: float = 0
    #: When the VM (re)started booting; a different value resets its monitoring state.
    since: float = 0
    kpis: tuple[KpiSpec, ...] = ()
    rules: Mapping[str, tuple[RuleAction, ...]] = field(default_factory=dict)

    @property
    def monitored(self) -> bool:
        return (
            self.enabled
            and not self.paused
            and self.kpi_enabled
            and self.bootup_time >= 0
            and bool(self.kpis)
        )

    @property
    def alive_kpi(self) -> str | None:
        names = [k.event_name for k in self.kpis]
        if ALIVE_EVENT in names:
            return ALIVE_EVENT
        return names[0] if names else None

    def kpi(self, event_name: str) -> KpiSpec | None:
        return next((k for k in self.kpis if k.event_name == event_name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One measurement of one KPI: a value, or an error when nothing could be measured.

    An error (target refused, collector broken) does not count toward either occurrence
    count: it is reported, it does not decide. An unanswered probe is a value (0 %), not an
    error.
    """

    value: float | None = None
    error: str | None = None
    at: float = 0.0

    def __post_init__(self) -> None:
        if (self.value is None) == (self.error is None):
            raise ValueError("a sample has exactly one of value or error")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What a collector is asked to measure once: one KPI of one VM."""

    key: str  # unique in one collect() call: "<vm_name>/<event_name>"
    vm_name: str
    address: str | None
    properties: Mapping[str, str] = field(default_factory=dict)
