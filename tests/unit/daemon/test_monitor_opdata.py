"""``eo:monitoring`` under each vm_instance: rendered from the monitor's state, valid YANG."""

from __future__ import annotations

from lxml import etree

from esc_orch.daemon.monitor_opdata import monitoring_element
from esc_orch.daemon.opdata import tenants_element
from esc_orch.model.record import VmRecord
from esc_orch.model.schema import EO_NS, ESC_NS
from esc_orch.monitor.ports import KpiStatus, VmStatus
from esc_orch.monitor.types import VimView, VmWatch
from esc_orch.reconcile.recovery import Phase, RecoveryRun, Step, TriggerCause
from unit.daemon.test_lifecycle_opdata import _statuses, _validate_state

EO = {"eo": EO_NS, "e": ESC_NS}


def _extra(vm: VmRecord) -> etree._Element | None:
    status = VmStatus(
        vm_name=vm.name, monitoring=True, alive=False, vim=VimView.HOST_UNREACHABLE,
        kpis=(
            KpiStatus(event_name="VM_ALIVE", condition=False, last_value=0.0, consecutive=3,
                      last_poll_at=1796122242.1, last_error=None),
        ),
    )  # fmt: skip
    run = RecoveryRun(
        vm_name=vm.name, cause=TriggerCause.HOST_DOWN, phase=Phase.AWAITING_ALIVE,
        source=vm.identity, current=vm.identity, step=Step.REBOOT, seq=4, announced=True,
        deadline=1796122842.0,
    )  # fmt: skip
    watch = VmWatch(vm_name=vm.name, tenant="t", deployment="d", group="g", connector_id="c")
    return monitoring_element(watch=watch, status=status, run=run, rule_problem="rule x: failed")


def test_monitoring_opdata_is_valid_eo_state_data() -> None:
    tenants = tenants_element(_statuses(), vm_extra=_extra)
    assert _validate_state(tenants) == []
    mon = tenants.xpath("//e:vm_instance/eo:monitoring", namespaces=EO)[0]
    assert mon.findtext("eo:enabled", namespaces=EO) == "true"
    assert mon.findtext("eo:vim_view", namespaces=EO) == "host-unreachable"
    kpi = mon.find("eo:kpi", EO)
    assert (
        kpi.findtext("eo:condition", namespaces=EO),
        kpi.findtext("eo:consecutive", namespaces=EO),
    ) == ("false", "3")
    assert kpi.findtext("eo:last_poll", namespaces=EO).startswith("2026-")
    recovery = mon.find("eo:recovery", EO)
    assert recovery.findtext("eo:phase", namespaces=EO) == "awaiting-alive"
    assert recovery.findtext("eo:step", namespaces=EO) == "reboot"
    assert recovery.findtext("eo:attempt", namespaces=EO) == "1"


def test_a_vm_no_kpi_watches_has_no_monitoring_element() -> None:
    assert monitoring_element(watch=None, status=None, run=None) is None
