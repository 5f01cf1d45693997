"""The daemon's Prometheus metrics: every definition, in one leaf module.

It imports nothing of esc-orch, so any layer that does work worth counting (northbound,
reactor, the VIM connectors, the daemon) can record it with one call, and the import-layer
contracts stay intact. Recording is always on and cheap (a counter increment); exposing is
the daemon's business (``daemon/metrics_http.py``, off unless ``[metrics] port`` is set).

Label values are bounded: operation and action names come from our own code, connector ids
and event types from the configuration and the event vocabulary, never from a client's
free text. docs/operations.md lists every metric; keep it in step with this file.

Quantities that exist only while the daemon runs (queue depths of subscriptions) are read at
scrape time from *sources* a component registers (:func:`add_queue_source`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# No "*_created" series: they double the output and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The registry the daemon exposes (not prometheus_client's global one).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

BUILD_INFO = Info("esc_orch_build", "Version of esc-orch", registry=REGISTRY)

# ------------------------------------------------------------------------ NETCONF
NETCONF_SESSIONS = Gauge(
    "esc_orch_netconf_sessions", "NETCONF sessions open now", registry=REGISTRY
)
NETCONF_SESSIONS_STARTED = Counter(
    "esc_orch_netconf_sessions_started", "NETCONF sessions opened", registry=REGISTRY
)
RPC_DURATION = Histogram(
    "esc_orch_netconf_rpc_duration_seconds",
    "Time to handle one NETCONF RPC, by operation and result (ok or error)",
    ["operation", "result"],
    buckets=_FAST,
    registry=REGISTRY,
)
CONFIG_COMMITS = Counter(
    "esc_orch_config_commits",
    "Changes of the running configuration made durable (commit, or edit-config on running)",
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ events
EVENTS_EMITTED = Counter(
    "esc_orch_events_emitted",
    "escEvents written to the durable event log, by event type",
    ["event_type"],
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ lifecycle
LIFECYCLE_RUNS = Counter(
    "esc_orch_lifecycle_runs",
    "Convergence runs of a deployment, by operation and outcome (success or failure)",
    ["operation", "outcome"],
    registry=REGISTRY,
)
LIFECYCLE_STEPS = Counter(
    "esc_orch_lifecycle_steps",
    "Reactor steps (one planned action each), by action and outcome "
    "(done, replan, failed, abandoned)",
    ["action", "outcome"],
    registry=REGISTRY,
)
LIFECYCLE_STEP_DURATION = Histogram(
    "esc_orch_lifecycle_step_duration_seconds",
    "Time of one reactor step including its VIM calls and retries, by action",
    ["action"],
    buckets=_SLOW,
    registry=REGISTRY,
)

# ------------------------------------------------------------------------ VIM
VIM_CALL_DURATION = Histogram(
    "esc_orch_vim_call_duration_seconds",
    "Time of one VIM connector call (its own retries included), by connector and call",
    ["connector", "call"],
    buckets=_SLOW,
    registry=REGISTRY,
)
VIM_CALL_ERRORS = Counter(
    "esc_orch_vim_call_errors",
    "VIM connector calls that raised, by connector, call and error class",
    ["connector", "call", "error"],
    registry=REGISTRY,
)
VIM_CONNECTOR_STATUS = Gauge(
    "esc_orch_vim_connector_status",
    "Last check of each VIM connector: 1 for its current status, 0 for the others",
    ["connector", "status"],
    registry=REGISTRY,
)
CONNECTOR_STATUSES = ("CONNECTION_SUCCESSFUL", "CONNECTION_FAILED", "CONNECTION_UNKNOWN")


# ------------------------------------------------------------------------ monitoring
MONITOR_POLLS = Counter(
    "esc_orch_monitor_polls",
    "KPI samples collected, by the VM's VIM connector and result (ok: a value was measured; "
    "error: nothing could be, e.g. a refused target or a broken script)",
    ["connector", "result"],
    registry=REGISTRY,
)
MONITOR_POLL_DURATION = Histogram(
    "esc_orch_monitor_poll_duration_seconds",
    "Time of one collector batch (every due target of one collector type at once), by collector",
    ["collector"],
    buckets=_SLOW,
    registry=REGISTRY,
)
RECOVERIES = Counter(
    "esc_orch_recoveries",
    "VM recovery notices, by action (reboot, undeploy, redeploy, complete, cancel) and "
    "outcome (success or failure)",
    ["action", "outcome"],
    registry=REGISTRY,
)


# ------------------------------------------------------------------------ recording
def monitor_poll(*, collector: str, seconds: float, results: Iterable[tuple[str, bool]]) -> None:
    """One collector batch: its duration, and (connector, measured) per sample."""
    MONITOR_POLL_DURATION.labels(collector=collector).observe(seconds)
    for connector, ok in results:
        MONITOR_POLLS.labels(connector=connector, result="ok" if ok else "error").inc()


def recovery(*, action: str, outcome: str) -> None:
    RECOVERIES.labels(action=action, outcome=outcome).inc()


def rpc_handled(*, operation: str, ok: bool, seconds: float) -> None:
    RPC_DURATION.labels(operation=operation, result="ok" if ok else "error").observe(seconds)


def lifecycle_run(*, operation: str, ok: bool) -> None:
    LIFECYCLE_RUNS.labels(operation=operation, outcome="success" if ok else "failure").inc()


def lifecycle_step(*, action: str, outcome: str, seconds: float | None = None) -> None:
    LIFECYCLE_STEPS.labels(action=action, outcome=outcome).inc()
    if seconds is not None:
        LIFECYCLE_STEP_DURATION.labels(action=action).observe(seconds)


class StepTimer:
    """Started when a reactor step starts; ``end`` records its outcome and duration."""

    def __init__(self, *, action: str) -> None:
        self.action = action
        self.started = time.monotonic()

    def end(self, *, outcome: str) -> None:
        lifecycle_step(action=self.action, outcome=outcome, seconds=time.monotonic() - self.started)


def vim_call(*, connector: str, call: str, seconds: float, error: str | None = None) -> None:
    VIM_CALL_DURATION.labels(connector=connector, call=call).observe(seconds)
    if error is not None:
        VIM_CALL_ERRORS.labels(connector=connector, call=call, error=error).inc()


def connector_status(*, connector: str, status: str | None) -> None:
    """Record a connector's status; ``None`` forgets a deleted connector."""
    for each in CONNECTOR_STATUSES:
        if status is None:
            with contextlib.suppress(KeyError):
                VIM_CONNECTOR_STATUS.remove(connector, each)
        else:
            VIM_CONNECTOR_STATUS.labels(connector=connector, status=each).set(each == status)


def events_emitted(event_types: Iterable[str]) -> None:
    for event_type in event_types:
        EVENTS_EMITTED.labels(event_type=event_type).inc()


# ------------------------------------------------------------------------ scrape-time sources
#: A source of (session id, notifications queued and not yet sent) per subscription.
QueueSource = Callable[[], Iterable[tuple[int, int]]]


class _Subscriptions(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sources: list[QueueSource] = []

    def add(self, source: QueueSource) -> None:
        with self._lock:
            self.sources.append(source)

    def remove(self, source: QueueSource) -> None:
        with self._lock:
            if source in self.sources:
                self.sources.remove(source)

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily(
            "esc_orch_notification_subscriptions", "Active escEvent subscriptions"
        )
        depth = GaugeMetricFamily(
            "esc_orch_notification_queue_depth",
            "Notifications queued for a subscriber and not yet sent, by session",
            labels=["session"],
        )
        with self._lock:
            sources = list(self.sources)
        total = 0
        for source in sources:
            for session_id, queued in source():
                total += 1
                depth.add_metric([str(session_id)], queued)
        count.add_metric([], total)
        yield count
        yield depth


_SUBSCRIPTIONS = _Subscriptions()
REGISTRY.register(_SUBSCRIPTIONS)


def add_queue_source(source: QueueSource) -> None:
    _SUBSCRIPTIONS.add(source)


def remove_queue_source(source: QueueSource) -> None:
    _SUBSCRIPTIONS.remove(source)
