"""The lifecycle vocabulary every layer shares: states, run kinds, who a VM is, what it got.

The planner (``reconcile``) produces these, the reactor acts on them, the store persists them
and the daemon and opdata read them, so they are defined here, below all of those. The state
names are those of ``yang/esc-types.yang`` (deployment-state, vm-state) and go onto opdata
unchanged.

VM identity (reference: ESC names a VM ``<deployment>_<group>_<index>_<uuid>``; that name is
both ``vmname`` and ``generated_vmname``, ``vmid`` is a second uuid) is chosen once, when the VM
is first planned, and never changes: an update, a re-creation or a move keeps it. The name is
the VM's identity on every connector, which is what makes ``ensure_vm`` idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from esc_orch.model.vim import VmSpec

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))


def vm_name(*, deployment: str, group: str, index: int, uuid: str) -> str:
    return f"{deployment}_{group}_{index}_{uuid}"


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


class LifecycleOperation(StrEnum):
    """What a convergence run was started for; decides the service-level event."""

    DEPLOY = "deploy"
    UPDATE = "update"
    UNDEPLOY = "undeploy"


@dataclass(frozen=True, slots=True, kw_only=True)
class VmIdentity:
    """One VM of a deployment, for its whole life."""

    deployment: str
    group: str
    index: int
    uuid: str  # the suffix of the generated name
    vmid: str

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"VM index must be >= 0, got {self.index}")
        if not is_uuid(self.uuid):
            raise ValueError(f"not a uuid: {self.uuid!r}")

    @property
    def name(self) -> str:
        """``vmname`` and ``generated_vmname``: ``<dep>_<group>_<index>_<uuid>``."""
        return vm_name(
            deployment=self.deployment, group=self.group, index=self.index, uuid=self.uuid
        )

    @property
    def slot(self) -> tuple[str, int]:
        """(group, index): the place this VM fills in its deployment."""
        return (self.group, self.index)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedVm:
    """What the orchestrator last put on a VIM for one VM."""

    connector_id: str
    vim_project: str | None
    spec: VmSpec
