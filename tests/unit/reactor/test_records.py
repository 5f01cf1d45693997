"""The record transitions (reactor/records.py): pure functions, one per kind of change."""

from __future__ import annotations

from datetime import UTC, datetime

from esc_orch.model.actions import CreateVm, DeleteReason, DeleteVm, PowerOff
from esc_orch.model.failure import FailureCause, VmStillRunning
from esc_orch.model.lifecycle import (
    DeploymentState,
    LifecycleOperation,
    VmIdentity,
    VmLifecycleState,
)
from esc_orch.model.record import DeploymentRecord, FailureNote, StepInFlight, VmRecord
from esc_orch.model.vim import PowerState, Storage, VmSpec, VmState
from esc_orch.reactor import records as rec

AT = datetime(2026, 12, 1, tzinfo=UTC)
VM = VmIdentity(
    deployment="d", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
)
SPEC = VmSpec(name=VM.name, vcpus=1, memory_mb=512, disk_mb=1024, image="i")
RUNNING = VmState(
    name=VM.name,
    power=PowerState.RUNNING,
    host="h1",
    storage=Storage.LOCAL,
    vim_id="x",
    vcpus=1,
    memory_mb=512,
    disk_mb=1024,
    image="i",
)
EMPTY = DeploymentRecord(tenant="t", name="d", depid="id")


def test_a_create_in_flight_then_done() -> None:
    create = CreateVm(vm=VM, connector_id="C1", vim_project=None, spec=SPEC)
    step = StepInFlight(
        step_id="s", action="CreateVm", vm_name=VM.name, connector_id="C1", started=AT
    )
    flying = rec.stepping(EMPTY.with_identity(VM), create, step, LifecycleOperation.DEPLOY)
    assert flying.step == step and flying.run is LifecycleOperation.DEPLOY
    assert flying.vms[0].state is VmLifecycleState.DEPLOYING
    done = rec.stepped(flying, create, RUNNING)
    entry = done.vm(VM.name)
    assert done.step is None and entry is not None
    assert entry.applied is not None and entry.applied.connector_id == "C1"
    assert (entry.seen_on, entry.observed, entry.state) == (
        "C1",
        RUNNING,
        VmLifecycleState.DEPLOYED,
    )
    off = rec.stepped(done, PowerOff(vm=VM, connector_id="C1"), None)
    assert off.vms[0].state is VmLifecycleState.STOPPED
    gone = rec.stepped(
        done,
        DeleteVm(vm=VM, connector_id="C1", keep_disk=False, reason=DeleteReason.UNDEPLOY),
        None,
    )
    assert gone.vms[0].applied is None and gone.vms[0].state is VmLifecycleState.UNDEF


def test_a_failure_marks_the_deployment_and_the_vm_and_a_new_run_clears_it() -> None:
    record = DeploymentRecord(tenant="t", name="d", depid="id", vms=(VmRecord(identity=VM),))
    note = FailureNote(failure=VmStillRunning(vm_name=VM.name, connector_id="C1"), at=AT)
    failed = rec.failed(record, note, PowerOff(vm=VM, connector_id="C1"))
    assert failed.state is DeploymentState.ERROR and failed.last_failure == note
    assert failed.vms[0].state is VmLifecycleState.ERROR and failed.vms[0].last_failure == note
    assert note.cause is FailureCause.VM_STILL_RUNNING and "after power off" in note.message
    again = rec.started(failed, LifecycleOperation.UPDATE)
    assert again.state is DeploymentState.UPDATING
    assert again.last_failure is None and again.vms[0].last_failure is None


def test_flags_change_only_what_is_asked() -> None:
    record = DeploymentRecord(
        tenant="t",
        name="d",
        depid="id",
        vms=(VmRecord(identity=VM),),
        run=LifecycleOperation.UPDATE,
    )
    off = rec.with_flags(record, stopped=frozenset({VM.name}), owed_service_action="STOP")
    assert off.wanted_off() == {VM.name} and off.unmonitored() == frozenset()
    assert off.owed_service_action == "STOP" and off.run is LifecycleOperation.UPDATE
    settled = rec.with_flags(off, settle_service_action=True, run_finished=True)
    assert settled.owed_service_action is None and settled.run is None
    assert settled.wanted_off() == {VM.name}
