"""``esc_datamodel/opdata/tenants``: the deployments' state as ESC clients poll it (reference §3).

Rendered from the reactor's :class:`~esc_orch.model.record.DeploymentRecord` values (the one
record per deployment), in the element order of yang/esc.yang, so ``get`` with a subtree or
XPath filter such as
``/esc_datamodel/opdata/tenants/tenant[name='T']/deployments[deployment_name='D']/state_machine``
works as with ESC. VM states sit at ESC's path,
``state_machine/vm_state_machines/vm_state_machine[vm_name]/state``. What ESC lacks — the step
in flight and the last failure, per deployment and per VM — is added in our namespace (``eo:``,
yang/esc-orch.yang). A test validates the output against both modules with libyang.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lxml import etree

from esc_orch.model.events import format_event_time
from esc_orch.model.failure import connector_of, vm_of
from esc_orch.model.record import DeploymentRecord, FailureNote, StepInFlight, VmRecord
from esc_orch.model.schema import EO_NS, ESC_NS


def _sub(
    parent: etree._Element, name: str, text: object | None = None, *, ns: str = ESC_NS
) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        child.text = str(text)
    return child


def _progress(parent: etree._Element, step: StepInFlight | None, note: FailureNote | None) -> None:
    """``eo:current_step`` and ``eo:last_failure`` (yang/esc-orch.yang, lifecycle-progress)."""
    if step is not None:
        entry = _sub(parent, "current_step", ns=EO_NS)
        _sub(entry, "action", step.action, ns=EO_NS)
        _sub(entry, "vm_name", step.vm_name, ns=EO_NS)
        _sub(entry, "vim_id", step.connector_id, ns=EO_NS)
        _sub(entry, "started", format_event_time(step.started), ns=EO_NS)
        if step.detail:
            _sub(entry, "detail", step.detail, ns=EO_NS)
        if step.bytes_total is not None:
            _sub(entry, "bytes_done", str(step.bytes_done or 0), ns=EO_NS)
            _sub(entry, "bytes_total", str(step.bytes_total), ns=EO_NS)
    if note is not None:
        entry = _sub(parent, "last_failure", ns=EO_NS)
        _sub(entry, "cause", note.cause.value, ns=EO_NS)
        _sub(entry, "message", note.message, ns=EO_NS)
        _sub(entry, "time", format_event_time(note.at), ns=EO_NS)
        if (vm := vm_of(note.failure)) is not None:
            _sub(entry, "vm_name", vm, ns=EO_NS)
        if (cid := connector_of(note.failure)) is not None:
            _sub(entry, "vim_id", cid, ns=EO_NS)


#: The extra ``eo:`` element of a VM (its monitoring, daemon/monitor_opdata.py), or None.
VmExtra = Callable[[VmRecord], etree._Element | None] | None


def _vm_instance(
    parent: etree._Element, vm: VmRecord, step: StepInFlight | None, extra: VmExtra = None
) -> None:
    entry = _sub(parent, "vm_instance")
    _sub(entry, "vm_id", vm.identity.vmid)
    _sub(entry, "name", vm.identity.name)
    observed = vm.observed
    if observed is not None:
        _sub(entry, "host_id", observed.host)
        _sub(entry, "hostname", observed.host)
    if vm.connector_id:
        _sub(entry, "vim_id", vm.connector_id)
    if vm.vim_project:
        _sub(entry, "vim_project", vm.vim_project)
    if observed is not None and observed.interfaces:
        interfaces = _sub(entry, "interfaces")
        for nic in observed.interfaces:
            interface = _sub(interfaces, "interface")
            _sub(interface, "nicid", nic.nicid)
            if nic.port_id:
                _sub(interface, "port_id", nic.port_id)
            _sub(interface, "network", nic.network)
            if nic.ip_address:
                _sub(interface, "ip_address", nic.ip_address)
            if nic.mac_address:
                _sub(interface, "mac_address", nic.mac_address.lower())
            if nic.netmask:
                _sub(interface, "netmask", nic.netmask)
    mine = step if step is not None and step.vm_name == vm.identity.name else None
    _progress(entry, mine, vm.last_failure)
    more = extra(vm) if extra is not None else None
    if more is not None:
        entry.append(more)


def deployment_element(
    parent: etree._Element, record: DeploymentRecord, vm_extra: VmExtra = None
) -> None:
    dep = _sub(parent, "deployments")
    _sub(dep, "deployment_name", record.name)
    _sub(dep, "deployment_id", record.depid)
    state_machine = _sub(dep, "state_machine")
    _sub(state_machine, "state", record.state.value)
    machines = _sub(state_machine, "vm_state_machines") if record.vms else None
    for vm in record.vms:
        assert machines is not None
        machine = _sub(machines, "vm_state_machine")
        _sub(machine, "vm_name", vm.identity.name)
        _sub(machine, "state", vm.shown_state.value)
    groups: dict[str, list[VmRecord]] = {}
    for vm in record.vms:
        groups.setdefault(vm.identity.group, []).append(vm)
    for group, vms in sorted(groups.items()):
        entry = _sub(dep, "vm_group")
        _sub(entry, "name", group)
        for vm in sorted(vms, key=lambda v: v.identity.index):
            _vm_instance(entry, vm, record.step, vm_extra)
    _progress(dep, record.step, record.last_failure)


def tenants_element(
    records: Iterable[DeploymentRecord], *, vm_extra: VmExtra = None
) -> etree._Element:
    """``<tenants>`` with one ``tenant`` per tenant that has deployment state."""
    root = etree.Element(f"{{{ESC_NS}}}tenants", nsmap={None: ESC_NS, "eo": EO_NS})  # type: ignore[dict-item]
    by_tenant: dict[str, list[DeploymentRecord]] = {}
    for record in records:
        by_tenant.setdefault(record.tenant, []).append(record)
    for tenant, deployments in sorted(by_tenant.items()):
        entry = _sub(root, "tenant")
        _sub(entry, "name", tenant)
        _sub(entry, "tenant_id", tenant)
        for record in sorted(deployments, key=lambda r: r.name):
            deployment_element(entry, record, vm_extra)
    return root
