"""The lifecycle vocabulary shared by the planner, the reactor and the event code.

These are protocol values: the names are those of ``yang/esc-types.yang`` (deployment-state,
vm-state, event-type, vm-update-type, event-status), so they go onto the wire unchanged. They
live in ``reconcile`` because planned actions already say which event they will report.
"""

from __future__ import annotations

from enum import StrEnum


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


class EventStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class EventType(StrEnum):
    """The escEvent ``event/type`` values the lifecycle reports."""

    VM_DEPLOYED = "VM_DEPLOYED"
    VM_ALIVE = "VM_ALIVE"
    SERVICE_ALIVE = "SERVICE_ALIVE"
    VM_UPDATED = "VM_UPDATED"
    SERVICE_UPDATED = "SERVICE_UPDATED"
    VM_UNDEPLOYED = "VM_UNDEPLOYED"
    SERVICE_UNDEPLOYED = "SERVICE_UNDEPLOYED"
    VM_STARTED = "VM_STARTED"
    VM_STOPPED = "VM_STOPPED"
    VM_REBOOTED = "VM_REBOOTED"
    SERVICE_STARTED = "SERVICE_STARTED"
    SERVICE_STOPPED = "SERVICE_STOPPED"
    SERVICE_REBOOTED = "SERVICE_REBOOTED"


class VmUpdateType(StrEnum):
    """What a VM_UPDATED event reports (``vm_update_type``)."""

    LOCATOR_UPDATED = "LOCATOR_UPDATED"
    FLAVOR_UPDATED = "FLAVOR_UPDATED"
    IMAGE_UPDATED = "IMAGE_UPDATED"
    INTERFACE_ADDED = "INTERFACE_ADDED"
    INTERFACE_DELETED = "INTERFACE_DELETED"
    INTERFACE_UPDATED = "INTERFACE_UPDATED"
    EXTENSIONS_UPDATED = "EXTENSIONS_UPDATED"
    CONFIG_DATA_UPDATED = "CONFIG_DATA_UPDATED"
    MONITORING_UPDATED = "MONITORING_UPDATED"


class Operation(StrEnum):
    """What a convergence run was started for; decides the service-level event."""

    DEPLOY = "deploy"
    UPDATE = "update"
    UNDEPLOY = "undeploy"
