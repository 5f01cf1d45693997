"""Turning a run's steps into escEvents: which event, which status, which message.

Kept apart from the loop so the wording and the field choices (reference §5) are in one place
and the loop reads as control flow only.
"""

from __future__ import annotations

from dataclasses import dataclass

from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    CreateVm,
    DeleteVm,
    FenceHost,
    MigrateVm,
    PowerOff,
    Reboot,
    RecreateVm,
    Report,
)
from esc_orch.model.eo_events import StaleCopyRemoved, stale_copy_removed
from esc_orch.model.events import (
    EscEvent,
    EventInfo,
    EventStatus,
    EventType,
    VmDetails,
    VmUpdateType,
)
from esc_orch.model.lifecycle import (
    DeploymentState,
    LifecycleOperation,
    VmIdentity,
    VmLifecycleState,
)
from esc_orch.model.record import DeploymentRecord
from esc_orch.model.vim import VmState
from esc_orch.reactor import events as ev
from esc_orch.reactor.status import DeploymentTarget

STATE_DURING = {
    LifecycleOperation.DEPLOY: DeploymentState.DEPLOYING,
    LifecycleOperation.UPDATE: DeploymentState.UPDATING,
    LifecycleOperation.UNDEPLOY: DeploymentState.UNDEPLOYING,
}


def vm_state_during(action: Action) -> VmLifecycleState:
    match action:
        case CreateVm():
            return VmLifecycleState.DEPLOYING
        case MigrateVm() | FenceHost():
            return VmLifecycleState.MIGRATING
        case RecreateVm() | AcceptSpec():
            return VmLifecycleState.UPDATING
        case DeleteVm():
            return VmLifecycleState.UNDEPLOYING
        case Reboot():
            return VmLifecycleState.REBOOTING
        case PowerOff():
            return VmLifecycleState.STOPPED
        case _:
            return VmLifecycleState.DEPLOYED


def _success_message(name: str, report: Report) -> str:
    match report.event:
        case EventType.VM_DEPLOYED:
            return ev.VM_CREATED.format(name=name)
        case EventType.VM_UNDEPLOYED:
            return ev.VM_DELETED
        case EventType.VM_UPDATED if report.update_type is VmUpdateType.LOCATOR_UPDATED:
            return ev.LOCATOR_UPDATED
        case EventType.VM_STARTED:
            return ev.VM_STARTED.format(name=name)
        case EventType.VM_STOPPED:
            return ev.VM_STOPPED.format(name=name)
        case EventType.VM_REBOOTED:
            return ev.VM_REBOOTED.format(name=name)
        case _:
            return ev.VM_UPDATED.format(name=name)


@dataclass(frozen=True, kw_only=True)
class Reporter:
    """Builds the events of one run (deployment facts fixed at the start)."""

    target: DeploymentTarget
    depid: str
    operation: LifecycleOperation

    def _event(
        self,
        *,
        failure: str | None,
        message: str,
        event_type: EventType,
        code: int = 500,
        update: VmUpdateType | None = None,
        vm: VmIdentity | None = None,
        source: VmDetails | None = None,
    ) -> EscEvent:
        return EscEvent(
            status=EventStatus.SUCCESS if failure is None else EventStatus.FAILURE,
            status_code=200 if failure is None else code,
            status_message=message if failure is None else failure,
            event=EventInfo(type=event_type),
            vm_update_type=update,
            depname=self.target.name,
            tenant=self.target.tenant,
            tenant_id=self.target.tenant_id or self.target.tenant,
            depid=self.depid,
            vm_group=vm.group if vm else None,
            vm_source=source,
        )

    def details(self, vm: VmIdentity, record: DeploymentRecord) -> VmDetails:
        entry = record.vm(vm.name)
        applied = entry.applied if entry else None
        return ev.vm_details(
            identity=vm,
            connector_id=applied.connector_id if applied else (entry.seen_on if entry else None),
            vim_project=applied.vim_project if applied else None,
            state=entry.observed if entry else None,
            nics=applied.spec.interfaces if applied else (),
        )

    def vm_event(
        self,
        action: Action,
        report: Report,
        record: DeploymentRecord,
        *,
        failure: str | None = None,
    ) -> EscEvent:
        return self.vm_report(action.vm, report, record, failure=failure)

    def vm_report(
        self,
        vm: VmIdentity,
        report: Report,
        record: DeploymentRecord,
        *,
        failure: str | None = None,
    ) -> EscEvent:
        """The event ``report`` of VM ``vm`` (a step's, or one a crash left owed)."""
        return self._event(
            failure=failure,
            message=_success_message(vm.name, report),
            event_type=report.event,
            update=report.update_type,
            vm=vm,
            source=self.details(vm, record),
        )

    def alive(self, vm: VmIdentity, record: DeploymentRecord) -> EscEvent:
        return self._event(
            failure=None,
            message=ev.vm_alive_message(vm.name),
            event_type=EventType.VM_ALIVE,
            vm=vm,
            source=self.details(vm, record),
        )

    def stale_copy(
        self, action: DeleteVm, record: DeploymentRecord, *, found: VmState | None
    ) -> StaleCopyRemoved:
        """``eo:stale-copy-removed``: ``action`` removed a copy the VM had left on a host."""
        entry = record.vm(action.vm.name)
        applied = entry.applied if entry is not None else None
        placed = applied.connector_id if applied is not None else None
        return stale_copy_removed(
            depname=self.target.name, tenant=self.target.tenant, depid=self.depid,
            vm_group=action.vm.group, vmid=action.vm.vmid or None, vmname=action.vm.name,
            vim_id=action.connector_id, hostname=found.host if found is not None else None,
            power_found=str(found.power) if found is not None else None,
            placed_on=placed if placed != action.connector_id else None,
            disk_kept=action.keep_disk,
        )  # fmt: skip

    def service(self, *, failure: str | None = None, code: int = 500) -> EscEvent:
        return self._event(
            failure=None
            if failure is None
            else ev.service_message(self.operation, failure=failure),
            message=ev.service_message(self.operation),
            event_type=ev.service_event_of(self.operation),
            code=code,
        )
