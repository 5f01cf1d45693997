"""The lifecycle vocabulary shared by the planner, the reactor and the event code.

These are protocol values: the names are those of ``yang/esc-types.yang`` (deployment-state,
vm-state), so they go onto opdata unchanged; the escEvent ones (event-type, vm-update-type,
event-status) are :mod:`esc_orch.model.events`' and re-exported here because planned actions
already say which event they will report.
"""

from __future__ import annotations

from enum import StrEnum

# The escEvent vocabulary is the event model's (one definition, checked against the YANG).
from esc_orch.model.events import EventStatus, EventType, VmUpdateType

__all__ = [
    "DeploymentState",
    "EventStatus",
    "EventType",
    "Operation",
    "VmLifecycleState",
    "VmUpdateType",
]


class DeploymentState(StrEnum):
    """``opdata .../state_machine/state`` of a deployment."""

    INERT = "SERVICE_INERT_STATE"
    DEPLOYING = "SERVICE_DEPLOYING_STATE"
    ACTIVE = "SERVICE_ACTIVE_STATE"
    UPDATING = "SERVICE_UPDATING_STATE"
    UNDEPLOYING = "SERVICE_UNDEPLOYING_STATE"
    STOPPED = "SERVICE_STOPPED_STATE"
    ERROR = "SERVICE_ERROR_STATE"


class VmLifecycleState(StrEnum):
    """``opdata .../vm_state_machine[vm_name]/state`` of one VM."""

    UNDEF = "VM_UNDEF_STATE"
    DEPLOYING = "VM_DEPLOYING_STATE"
    DEPLOYED = "VM_DEPLOYED_STATE"
    ALIVE = "VM_ALIVE_STATE"
    STOPPED = "VM_STOPPED_STATE"
    REBOOTING = "VM_REBOOTING_STATE"
    RECOVERING = "VM_RECOVERING_STATE"
    MIGRATING = "VM_MIGRATING_STATE"
    UPDATING = "VM_UPDATING_STATE"
    UNDEPLOYING = "VM_UNDEPLOYING_STATE"
    MONITOR_DISABLED = "VM_MONITOR_DISABLED_STATE"
    ERROR = "VM_ERROR_STATE"


class Operation(StrEnum):
    """What a convergence run was started for; decides the service-level event."""

    DEPLOY = "deploy"
    UPDATE = "update"
    UNDEPLOY = "undeploy"
