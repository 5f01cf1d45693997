"""``esc_datamodel/opdata/tenants``: the deployments' state as ESC clients poll it (reference §3).

Built from the reactor's :class:`~esc_orch.reactor.DeploymentStatus` values, in the element
order of yang/esc.yang, so ``get`` with a subtree or XPath filter such as
``/esc_datamodel/opdata/tenants/tenant[name='T']/deployments[deployment_name='D']/state_machine``
works as with ESC. A test validates the output against the module with libyang.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lxml import etree

from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.model.schema import ESC_NS
from esc_orch.reactor import DeploymentStatus, VmStatus


def _sub(parent: etree._Element, name: str, text: object | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ESC_NS}}}{name}")
    if text is not None:
        child.text = str(text)
    return child


def _vm_instance(parent: etree._Element, vm: VmStatus) -> None:
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


def deployment_element(
    parent: etree._Element, status: DeploymentStatus, *, unmonitored: frozenset[str]
) -> None:
    dep = _sub(parent, "deployments")
    _sub(dep, "deployment_name", status.name)
    _sub(dep, "deployment_id", status.depid)
    _sub(_sub(dep, "state_machine"), "state", status.state.value)
    for vm in status.vms:
        machine = _sub(dep, "vm_state_machine")
        _sub(machine, "vm_name", vm.identity.name)
        state = vm.state
        if vm.identity.name in unmonitored and state is VmLifecycleState.ALIVE:
            state = VmLifecycleState.MONITOR_DISABLED
        _sub(machine, "state", state.value)
    groups: dict[str, list[VmStatus]] = {}
    for vm in status.vms:
        groups.setdefault(vm.identity.group, []).append(vm)
    for group, vms in sorted(groups.items()):
        entry = _sub(dep, "vm_group")
        _sub(entry, "name", group)
        for vm in sorted(vms, key=lambda v: v.identity.index):
            _vm_instance(entry, vm)


def tenants_element(
    statuses: Iterable[DeploymentStatus], *, unmonitored: Mapping[tuple[str, str], frozenset[str]]
) -> etree._Element:
    """``<tenants>`` with one ``tenant`` per tenant that has deployment state."""
    root = etree.Element(f"{{{ESC_NS}}}tenants", nsmap={None: ESC_NS})  # type: ignore[dict-item]
    by_tenant: dict[str, list[DeploymentStatus]] = {}
    for status in statuses:
        by_tenant.setdefault(status.tenant, []).append(status)
    for tenant, deployments in sorted(by_tenant.items()):
        entry = _sub(root, "tenant")
        _sub(entry, "name", tenant)
        _sub(entry, "tenant_id", tenant)
        for status in sorted(deployments, key=lambda s: s.name):
            deployment_element(
                entry,
                status,
                unmonitored=unmonitored.get((status.tenant, status.name), frozenset()),
            )
    return root
