"""How a step changes a deployment's record: the reactor's pure record transitions.

Each function takes the current :class:`~esc_orch.model.record.DeploymentRecord` and facts
(what the step did, what the VIMs showed, how the run ended) and returns the next record; none
does I/O or keeps state. The loop in :mod:`esc_orch.reactor.engine` calls them and hands each
result to the journal or the event sink. Kept apart so what a record means is read (and
tested) in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    CreateVm,
    DeleteVm,
    MigrateVm,
    PowerOff,
    PowerOn,
    Reboot,
    RecreateVm,
    SourceState,
)
from esc_orch.model.lifecycle import (
    AppliedVm,
    DeploymentState,
    LifecycleOperation,
    VmIdentity,
    VmLifecycleState,
)
from esc_orch.model.record import DeploymentRecord, FailureNote, StepInFlight
from esc_orch.model.vim import PowerState, VmState
from esc_orch.reactor.report import STATE_DURING, vm_state_during
from esc_orch.reconcile.desired import DesiredState
from esc_orch.reconcile.observed import Observation


def started(record: DeploymentRecord, operation: LifecycleOperation) -> DeploymentRecord:
    """A run begins: the state of its kind; the last failures are cleared."""
    return replace(
        record,
        state=STATE_DURING[operation],
        last_failure=None,
        vms=tuple(replace(v, last_failure=None) for v in record.vms),
    )


def observed(
    record: DeploymentRecord, obs: Observation, adopted: Iterable[VmIdentity]
) -> DeploymentRecord:
    """Adopted identities known; each VM as the connector it is placed on showed it."""
    for ident in adopted:
        record = record.with_identity(ident)
    for view in obs.views:
        for state in view.vms:
            entry = record.vm(state.name)
            if entry is None:
                continue
            if entry.applied is None or entry.applied.connector_id == view.connector_id:
                record = record.with_vm(state.name, seen_on=view.connector_id, observed=state)
        if view.reachable:
            shown = {vm.name for vm in view.vms}
            for entry in record.vms:
                if view.connector_id in entry.left_on and entry.name not in shown:
                    left = tuple(c for c in entry.left_on if c != view.connector_id)
                    record = record.with_vm(entry.name, left_on=left)
    return record


def planned(
    record: DeploymentRecord, desired: DesiredState, *, stopped: frozenset[str]
) -> DeploymentRecord:
    """Every desired VM known before any step names it, with its wanted power."""
    for vm in desired.vms:
        record = record.with_identity(vm.identity).with_vm(vm.name, wanted_off=vm.name in stopped)
    return record


def stepping(
    record: DeploymentRecord, action: Action, step: StepInFlight, operation: LifecycleOperation
) -> DeploymentRecord:
    """The step is journaled: in flight, its VM in the state the step puts it in."""
    record = record.with_vm(action.vm.name, state=vm_state_during(action))
    return replace(record, run=operation, step=step)


#: Steps after which the VM boots (its monitoring starts over: ``VmRecord.booted_at``).
BOOTING = (CreateVm, RecreateVm, MigrateVm, PowerOn, Reboot)


def stepped(
    record: DeploymentRecord,
    action: Action,
    state: VmState | None,
    *,
    at: datetime | None = None,
) -> DeploymentRecord:
    """The step is done: what was applied where, how the VIM left the VM (booting at ``at``)."""
    record = replace(record, step=None)
    name = action.vm.name
    if at is not None and isinstance(action, BOOTING):
        record = record.with_vm(name, booted_at=at)
    if isinstance(action, CreateVm | RecreateVm | MigrateVm | AcceptSpec):
        record = record.with_identity(action.vm).with_vm(
            name,
            applied=AppliedVm(
                connector_id=action.connector_id,
                vim_project=action.vim_project,
                spec=action.spec,
            ),
        )
    if state is not None:
        record = record.with_vm(
            name,
            seen_on=action.connector_id,
            observed=state,
            state=VmLifecycleState.DEPLOYED
            if state.power is PowerState.RUNNING
            else VmLifecycleState.STOPPED,
        )
    if isinstance(action, PowerOff):
        record = record.with_vm(name, state=VmLifecycleState.STOPPED)
    if isinstance(action, MigrateVm) and action.source is SourceState.UNREACHABLE:
        entry = record.vm(name)
        left = set(entry.left_on) if entry is not None else set()
        record = record.with_vm(name, left_on=tuple(sorted(left | {action.source_connector_id})))
    if action.report is not None:  # its event is logged with this record: nothing owed
        record = record.with_vm(name, owed=None)
    if isinstance(action, Reboot):
        record = record.with_vm(name, wanted_reboot=False)
    if isinstance(action, DeleteVm) and action.report is not None:  # retired, not a copy
        record = record.with_vm(
            name, applied=None, seen_on=None, observed=None, state=VmLifecycleState.UNDEF
        )
    return record


def converged(
    record: DeploymentRecord, desired: DesiredState, obs: Observation
) -> DeploymentRecord:
    """The plan is done: retired VMs forgotten, each VM alive or stopped, the deployment too."""
    for ident in desired.retired:
        record = record.without_vm(ident.name)
    for vm in desired.vms:
        running = any(c.state.power is PowerState.RUNNING for c in obs.copies(vm.name))
        record = record.with_vm(
            vm.name, state=VmLifecycleState.ALIVE if running else VmLifecycleState.STOPPED
        )
    wanted_on = [vm for vm in desired.vms if vm.power_on]
    state = DeploymentState.STOPPED if desired.vms and not wanted_on else DeploymentState.ACTIVE
    return replace(record, state=state, ever_active=True, step=None)


def failed(record: DeploymentRecord, note: FailureNote, action: Action | None) -> DeploymentRecord:
    """The run failed: the deployment (and the VM of the failed step) in error, with why."""
    record = replace(record, state=DeploymentState.ERROR, last_failure=note, step=None)
    if action is not None:
        record = record.with_vm(action.vm.name, state=VmLifecycleState.ERROR, last_failure=note)
    return record


def with_flags(
    record: DeploymentRecord,
    *,
    stopped: frozenset[str] | None = None,
    unmonitored: frozenset[str] | None = None,
    reboot: frozenset[str] | None = None,
    owed_service_action: str | None = None,
    settle_service_action: bool = False,
    quiet_run: bool = False,
    run_finished: bool = False,
) -> DeploymentRecord:
    """An action changed what is wanted (see :meth:`Reactor.set_flags`)."""
    vms = record.vms
    if stopped is not None:
        vms = tuple(replace(v, wanted_off=v.name in stopped) for v in vms)
    if reboot is not None:
        vms = tuple(replace(v, wanted_reboot=v.name in reboot) for v in vms)
    if unmonitored is not None:
        vms = tuple(replace(v, unmonitored=v.name in unmonitored) for v in vms)
    record = replace(record, vms=vms)
    if owed_service_action is not None:
        record = replace(record, owed_service_action=owed_service_action)
    if settle_service_action:
        record = replace(record, owed_service_action=None)
    if quiet_run:
        record = replace(record, quiet_run=True)
    if run_finished:
        record = replace(record, run=None, quiet_run=False)
    return record


def recovered(
    record: DeploymentRecord, action: Action, state: VmState | None, *, at: datetime
) -> DeploymentRecord:
    """A recovery step is done (its actions carry no report: the recovery events are it).

    A redeploy's :class:`CreateVm` carries the VM's new vmid: it becomes the VM's identity.
    An undeploy leaves the placement known (the redeploy puts the VM back there).
    """
    name = action.vm.name
    if isinstance(action, CreateVm):
        record = record.with_vm(name, identity=action.vm)
    if isinstance(action, DeleteVm):
        record = replace(record, step=None).with_vm(
            name, seen_on=None, observed=None, state=VmLifecycleState.UNDEF
        )
        return record
    return stepped(record, action, state, at=at)
