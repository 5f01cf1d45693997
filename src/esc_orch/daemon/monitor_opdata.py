"""``eo:monitoring`` under each ``vm_instance`` in opdata: what the monitor sees of the VM.

Monitoring on or off (ENABLE_MONITOR / DISABLE_MONITOR, paused while its deployment is
updated), whether the alive KPI holds, the VIM's own view, each KPI's condition, last value,
consecutive count, last poll time and last error, the recovery attempt in progress, and the
last rule action that failed (yang/esc-orch.yang, grouping ``vm-monitoring``). Read on demand
from the monitor's state, never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from esc_orch.model.events import format_event_time
from esc_orch.model.schema import EO_NS
from esc_orch.monitor.ports import VmStatus
from esc_orch.monitor.types import VmWatch
from esc_orch.reconcile.recovery import RecoveryRun


def _sub(parent: etree._Element, name: str, text: object | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{EO_NS}}}{name}")
    if text is not None:
        child.text = str(text).lower() if isinstance(text, bool) else str(text)
    return child


def _time(epoch: float) -> str:
    return format_event_time(datetime.fromtimestamp(epoch, tz=UTC))


def monitoring_element(
    *,
    watch: VmWatch | None,
    status: VmStatus | None,
    run: RecoveryRun | None,
    rule_problem: str | None = None,
) -> etree._Element | None:
    """The VM's ``eo:monitoring``; ``None`` for a VM no KPI watches and no recovery holds."""
    if watch is None and run is None:
        return None
    root = etree.Element(f"{{{EO_NS}}}monitoring")
    _sub(root, "enabled", watch is not None and watch.enabled)
    _sub(root, "paused", watch is not None and watch.paused)
    if status is not None:
        _sub(root, "alive", status.alive)
        if status.vim is not None:
            _sub(root, "vim_view", status.vim.value)
        for kpi in status.kpis:
            entry = _sub(root, "kpi")
            _sub(entry, "event_name", kpi.event_name)
            if kpi.condition is not None:
                _sub(entry, "condition", kpi.condition)
            if kpi.last_value is not None:
                _sub(entry, "last_value", f"{kpi.last_value:g}")
            _sub(entry, "consecutive", kpi.consecutive)
            if kpi.last_poll_at is not None:
                _sub(entry, "last_poll", _time(kpi.last_poll_at))
            if kpi.last_error:
                _sub(entry, "last_error", kpi.last_error)
    if run is not None:
        recovery = _sub(root, "recovery")
        _sub(recovery, "cause", run.cause.value)
        _sub(recovery, "phase", run.phase.value)
        _sub(recovery, "attempt", run.stage + 1)
        if run.step is not None:
            _sub(recovery, "step", run.step.value)
        _sub(recovery, "announced", run.announced)
        if run.deadline is not None:
            _sub(recovery, "deadline", _time(run.deadline))
    if rule_problem:
        _sub(root, "last_rule_problem", rule_problem)
    return root
