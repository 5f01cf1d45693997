"""Small parts of the daemon's monitoring wiring (daemon/monitoring.py), kept apart.

Which vm_groups a KPI reports alive, a collector wrapper that counts polls for the metrics,
and the recovery notices counted per action and outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from esc_orch import metrics
from esc_orch.model.config import Deployment, VmGroup
from esc_orch.model.events import EventType
from esc_orch.monitor.collectors.protocol import Collector
from esc_orch.monitor.types import MetricKind, Sample, Target
from esc_orch.monitor.watch import kpi_enabled
from esc_orch.reconcile.recovery import RecoveryNotice


def watched(group: VmGroup) -> bool:
    """Does a KPI send this group's VM_ALIVE? (else the reactor's first-seen-running does)."""
    return bool(group.kpi_data.kpi) and kpi_enabled(group) and group.bootup_time >= 0


def alive_by_monitor(deployment: Deployment | None) -> frozenset[str]:
    if deployment is None:
        return frozenset()
    return frozenset(g.name for g in deployment.vm_group if watched(g))


class MeteredCollector:
    """A collector whose batches and samples are counted (``esc_orch_monitor_*`` metrics)."""

    def __init__(self, inner: Collector, connector_of: Callable[[str], str]) -> None:
        self._inner = inner
        self._connector_of = connector_of

    @property
    def type_name(self) -> str:
        return self._inner.type_name

    @property
    def kind(self) -> MetricKind:
        return self._inner.kind

    async def collect(self, targets: Sequence[Target]) -> Mapping[str, Sample]:
        started = time.monotonic()
        samples = await self._inner.collect(targets)
        results = []
        for target in targets:
            sample = samples.get(target.key)
            ok = sample is not None and sample.error is None and sample.value is not None
            results.append((self._connector_of(target.vm_name), ok))
        metrics.monitor_poll(
            collector=self.type_name, seconds=time.monotonic() - started, results=results
        )
        return samples

    async def aclose(self) -> None:
        await self._inner.aclose()


def enum_or(kind: Any, value: str, default: Any) -> Any:
    try:
        return kind(value.upper())
    except ValueError:
        return default


def count_notice(notice: RecoveryNotice) -> None:
    actions = {
        EventType.VM_RECOVERY_REBOOT: "reboot",
        EventType.VM_RECOVERY_UNDEPLOYED: "undeploy",
        EventType.VM_RECOVERY_DEPLOYED: "redeploy",
        EventType.VM_RECOVERY_COMPLETE: "complete",
        EventType.VM_RECOVERY_CANCELLED: "cancel",
    }
    action = actions.get(notice.event)
    if action is not None:
        metrics.recovery(action=action, outcome="success" if notice.ok else "failure")
