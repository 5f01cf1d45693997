"""The escEvents the lifecycle sends, their wording, and the small sink they go to.

Events are :class:`esc_orch.model.events.EscEvent` values (the one typed escEvent, rendered by
the event model and stamped with ``eventTime`` by the durable log). The status messages ESC
clients match on are kept byte-for-byte here; failure sentences come from
:func:`esc_orch.model.failure.describe`.
"""

from __future__ import annotations

from esc_orch.model.events import (
    EventType,
    VmDetails,
    VmInterface,
    VmInterfaces,
)
from esc_orch.model.lifecycle import LifecycleOperation, VmIdentity
from esc_orch.model.vim import NicSpec, VmState

# Exact messages (seed and ESC guides).
LOCATOR_UPDATED = "VIM Locator Updated Successfully"
SERVICE_UPDATED = "Service group update completed successfully"
SERVICE_DEPLOYED = "Service group deployment completed successfully!"
SERVICE_UNDEPLOYED = "Service group undeployment completed successfully"
# Ours, in ESC's style (ESC's OpenStack driver says "OpenStack Driver: ...").
VM_CREATED = "VIM Driver: VM successfully created, VM Name: [{name}]"
VM_DELETED = "VIM Driver: VM successfully deleted"
VM_UPDATED = "VM updated successfully, VM Name: [{name}]"
VM_STARTED = "VM [{name}] started successfully."
VM_STOPPED = "VM [{name}] stopped successfully."
VM_REBOOTED = "VM [{name}] rebooted successfully."


def vm_alive_message(name: str) -> str:
    """ESC's VM_ALIVE message; X is the generated VM name."""
    return f"VM_Alive event received, VM ID: [{name}]"


_SERVICE_EVENT = {
    LifecycleOperation.DEPLOY: (EventType.SERVICE_ALIVE, SERVICE_DEPLOYED, "deployment"),
    LifecycleOperation.UPDATE: (EventType.SERVICE_UPDATED, SERVICE_UPDATED, "update"),
    LifecycleOperation.UNDEPLOY: (EventType.SERVICE_UNDEPLOYED, SERVICE_UNDEPLOYED, "undeployment"),
}


def service_event_of(operation: LifecycleOperation) -> EventType:
    return _SERVICE_EVENT[operation][0]


def service_message(operation: LifecycleOperation, *, failure: str | None = None) -> str:
    _, ok, noun = _SERVICE_EVENT[operation]
    return ok if failure is None else f"Service group {noun} completed with errors: {failure}"


def vm_details(
    *,
    identity: VmIdentity,
    connector_id: str | None,
    vim_project: str | None,
    state: VmState | None,
    nics: tuple[NicSpec, ...] = (),
) -> VmDetails:
    """Details from the identity, the placement and (when known) the observed VM."""
    wanted = {n.nicid: n for n in nics}
    interfaces = tuple(
        VmInterface(
            nicid=n.nicid,
            type=n.type.value,
            port_id=n.port_id,
            admin_state_up=wanted[n.nicid].admin_state_up if n.nicid in wanted else None,
            network=n.network,
            subnet="",  # rendered <subnet/>, as the seed's CSP events show
            ip_address=n.ip_address,
            mac_address=n.mac_address,
            netmask=n.netmask,
        )
        for n in (state.interfaces if state else ())
    )
    return VmDetails(
        vmid=identity.vmid,
        vmname=identity.name,
        generated_vmname=identity.name,
        hostid=state.host if state else None,
        hostname=state.host if state else None,
        vim_id=connector_id,
        vim_project=vim_project,
        interfaces=VmInterfaces(interface=interfaces) if interfaces else None,
    )
