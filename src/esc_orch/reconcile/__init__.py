"""Deciding what to do: desired VMs from the configuration, and the plan that gets there.

Pure code only (no I/O, no clock, no hidden randomness), so that every lifecycle decision is a
table test; :mod:`esc_orch.reactor` carries plans out. Imports neither SQLAlchemy, asyncssh nor
asyncio.
"""

from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    Blocked,
    CreateVm,
    DeleteReason,
    DeleteVm,
    MigrateVm,
    MigrationMode,
    Plan,
    PowerOff,
    PowerOn,
    Reboot,
    RecreateVm,
    Report,
    SourceState,
)
from esc_orch.model.events import EventStatus, EventType, VmUpdateType
from esc_orch.model.lifecycle import DeploymentState, LifecycleOperation, VmLifecycleState
from esc_orch.reconcile.desired import (
    DesiredState,
    DesiredVm,
    desired_vms,
    group_spec,
    substitute,
    undeploy_state,
)
from esc_orch.reconcile.errors import (
    DesiredStateError,
    InvalidSetting,
    IpPoolTooSmall,
    NoDefaultConnector,
    StorageUnavailable,
    UnknownConnector,
    UnknownFlavor,
    UnsatisfiableDeployment,
)
from esc_orch.reconcile.identity import (
    ParsedName,
    UuidFactory,
    VmIdentity,
    adopt_identities,
    new_identity,
    parse_vm_name,
    vm_name,
)
from esc_orch.reconcile.observed import AppliedVm, ConnectorView, Copy, Observation
from esc_orch.reconcile.planner import differences, plan

__all__ = [
    "AcceptSpec",
    "Action",
    "AppliedVm",
    "Blocked",
    "ConnectorView",
    "Copy",
    "CreateVm",
    "DeleteReason",
    "DeleteVm",
    "DeploymentState",
    "DesiredState",
    "DesiredStateError",
    "DesiredVm",
    "EventStatus",
    "EventType",
    "InvalidSetting",
    "IpPoolTooSmall",
    "LifecycleOperation",
    "MigrateVm",
    "MigrationMode",
    "NoDefaultConnector",
    "Observation",
    "ParsedName",
    "Plan",
    "PowerOff",
    "PowerOn",
    "Reboot",
    "RecreateVm",
    "Report",
    "SourceState",
    "StorageUnavailable",
    "UnknownConnector",
    "UnknownFlavor",
    "UnsatisfiableDeployment",
    "UuidFactory",
    "VmIdentity",
    "VmLifecycleState",
    "VmUpdateType",
    "adopt_identities",
    "desired_vms",
    "differences",
    "group_spec",
    "new_identity",
    "parse_vm_name",
    "plan",
    "substitute",
    "undeploy_state",
    "vm_name",
]
