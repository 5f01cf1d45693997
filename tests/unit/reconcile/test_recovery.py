"""The recovery policy as tables: inputs in order, the steps and notices each one gives."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import pytest

from esc_orch.model.actions import CreateVm, DeleteVm, PowerOn, Reboot
from esc_orch.model.events import EventType, VmDetails, esc_event_xml
from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.recovery import (
    AliveAgain,
    Cancel,
    CancelReason,
    Phase,
    RecoveryAction,
    RecoveryBook,
    RecoveryEffects,
    RecoveryInput,
    RecoveryNotice,
    RecoverySubject,
    RecoveryType,
    StepOutcome,
    Tick,
    Trigger,
    TriggerCause,
    recover,
    recovery_event,
    resume,
)
from esc_orch.vim.types import NicSpec, VmSpec

NAME_UUID = "46e607a8-b797-4056-96f3-42a90a63b555"
VMID = "6b0e7179-fd5e-487e-9570-e7ba98cce0ec"
VM = VmIdentity(deployment="dep", group="group", index=0, uuid=NAME_UUID, vmid=VMID)
NAME = VM.name
SPEC = VmSpec(
    name=NAME, vcpus=2, memory_mb=4096, disk_mb=10240, image="csr.qcow2",
    interfaces=(NicSpec(nicid=0, network="Eth0-2", ip_address="192.168.23.62"),),
)  # fmt: skip


def subject(
    action: RecoveryAction = RecoveryAction.REBOOT_ONLY,
    *,
    retries: int = 1,
    kind: RecoveryType = RecoveryType.AUTO,
) -> RecoverySubject:
    return RecoverySubject(
        vm=VM, connector_id="CSP-1", vim_project="CSP-1", spec=SPEC, action=action,
        recovery_type=kind, max_retries=retries, bootup_time=600,
    )  # fmt: skip


def uuids() -> Iterator[str]:
    for i in itertools.count(1):
        yield f"00000000-0000-0000-0000-{i:012d}"


class Driver:
    """Feeds inputs to the policy and keeps the book, the last step and what came out."""

    def __init__(self, subj: RecoverySubject) -> None:
        self.subjects = {NAME: subj}
        self.book = RecoveryBook()
        self.ids = uuids()
        self.seq = 0

    def __call__(self, event: RecoveryInput) -> RecoveryEffects:
        self.book, effects = recover(
            self.book, event, subjects=self.subjects, new_uuid=lambda: next(self.ids)
        )
        if effects.steps:
            self.seq = effects.steps[-1].seq
        return effects

    def done(self, at: float, *, ok: bool, failure: str | None = None) -> RecoveryEffects:
        return self(StepOutcome(vm_name=NAME, seq=self.seq, at=at, ok=ok, failure=failure))


def short(effects: RecoveryEffects) -> list[str]:
    out: list[str] = []
    for n in effects.notices:
        out.append(f"{n.event.removeprefix('VM_RECOVERY_')}:{'ok' if n.ok else 'FAIL'}")
    for s in effects.steps:
        out.append(f"do:{type(s.action).__name__}")
    for name, state in effects.vm_states:
        assert name == NAME
        out.append(f"state:{state.name}")
    return out


def test_seed_scenario_2_host_down_reboot_only() -> None:
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=1))
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0, not_before=60))) == []
    assert short(d(Tick(at=59))) == []
    started = d(Tick(at=60))
    assert short(started) == ["INIT:ok", "do:Reboot", "state:RECOVERING"]
    step = started.steps[0].action
    assert isinstance(step, Reboot) and step.report is None and step.connector_id == "CSP-1"
    rebooted = d.done(122, ok=False, failure="host CSP-1 does not answer")
    assert short(rebooted) == ["REBOOT:FAIL"]
    assert short(d(Tick(at=721))) == []
    done = d(Tick(at=722))
    assert short(done) == ["COMPLETE:FAIL", "state:ERROR"]
    notices = started.notices + rebooted.notices + done.notices
    assert [n.message for n in notices] == [
        f"Recovery event for VM Generated ID [{NAME}] triggered.",
        f"VM [{NAME}] failed to be rebooted.",
        f"Recovery: Recovery completed with errors for VM: [{NAME}]",
    ]
    assert [n.ok for n in notices] == [True, False, False]
    assert done.notices[0].failure == "host CSP-1 does not answer; not alive within 600 s"
    assert d.book.runs == {} and d.book.failed == {NAME}


def test_a_vm_stopped_behind_our_back_is_started_and_recovered() -> None:
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=1))
    started = d(Trigger(vm_name=NAME, cause=TriggerCause.VM_STOPPED, at=0))
    assert short(started) == ["INIT:ok", "do:PowerOn", "state:RECOVERING"]
    assert isinstance(started.steps[0].action, PowerOn)
    assert short(d.done(1, ok=True)) == ["REBOOT:ok"]
    back = d(AliveAgain(vm_name=NAME, at=40))
    assert short(back) == ["COMPLETE:ok", "state:ALIVE"]
    assert back.notices[0].message == f"Recovery: Successfully recovered VM [{NAME}]."
    assert d.book.runs == {} and d.book.failed == frozenset()


def test_reboot_then_redeploy_redeploys_after_the_reboot_fails() -> None:
    d = Driver(subject(RecoveryAction.REBOOT_THEN_REDEPLOY, retries=1))
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.KPI_FALSE, at=0))) == [
        "INIT:ok", "do:Reboot", "state:RECOVERING",
    ]  # fmt: skip
    assert short(d.done(5, ok=False, failure="boom")) == ["REBOOT:FAIL"]
    undeploy = d(Tick(at=605))
    assert short(undeploy) == ["do:DeleteVm"]
    delete = undeploy.steps[0].action
    assert isinstance(delete, DeleteVm) and not delete.keep_disk and delete.report is None
    redeploy = d.done(610, ok=True)
    assert short(redeploy) == ["UNDEPLOYED:ok", "do:CreateVm"]
    create = redeploy.steps[0].action
    assert isinstance(create, CreateVm) and create.vm.name == NAME and create.vm.vmid != VMID
    deployed = d.done(620, ok=True)
    assert short(deployed) == ["DEPLOYED:ok"]
    assert deployed.notices[0].target == create.vm
    done = d(AliveAgain(vm_name=NAME, at=700))
    assert short(done) == ["COMPLETE:ok", "state:ALIVE"]
    assert done.notices[0].source == VM and done.notices[0].target == create.vm


def test_redeploy_only_retries_then_gives_up() -> None:
    d = Driver(subject(RecoveryAction.REDEPLOY_ONLY, retries=2))
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))) == [
        "INIT:ok", "do:DeleteVm", "state:RECOVERING",
    ]  # fmt: skip
    assert short(d.done(1, ok=False)) == ["UNDEPLOYED:FAIL", "do:DeleteVm"]
    assert short(d.done(2, ok=False)) == ["UNDEPLOYED:FAIL", "COMPLETE:FAIL", "state:ERROR"]


@pytest.mark.parametrize(
    ("action", "retries", "stages"),
    [
        (RecoveryAction.REBOOT_ONLY, 3, ["reboot"] * 3),
        (RecoveryAction.REDEPLOY_ONLY, 1, ["redeploy"]),
        (RecoveryAction.REBOOT_THEN_REDEPLOY, 2, ["reboot", "redeploy"] * 2),
        (RecoveryAction.REBOOT_ONLY, 0, ["reboot"]),  # at least one attempt
    ],
)
def test_stages(action: RecoveryAction, retries: int, stages: Sequence[str]) -> None:
    assert [str(s) for s in subject(action, retries=retries).stages] == list(stages)


def test_flapping_kpi_host_down_and_manual_give_one_recovery() -> None:
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=1))
    out: list[str] = []
    out += short(d(Trigger(vm_name=NAME, cause=TriggerCause.KPI_FALSE, at=0, not_before=60)))
    out += short(d(Trigger(vm_name=NAME, cause=TriggerCause.KPI_FALSE, at=5, not_before=65)))
    out += short(d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=10, not_before=70)))
    manual = d(Trigger(vm_name=NAME, cause=TriggerCause.MANUAL, at=20))
    out += short(manual)
    assert out == ["INIT:ok", "do:Reboot", "state:RECOVERING"]  # the manual DO acts at once
    assert any("folded" in n for n in manual.notes)
    out = short(d(Trigger(vm_name=NAME, cause=TriggerCause.MANUAL, at=21)))
    out += short(d(Tick(at=100)))
    assert out == []
    assert d.book.runs[NAME].phase is Phase.STEP


def test_a_vm_back_during_recovery_wait_time_is_left_alone() -> None:
    d = Driver(subject())
    d(Trigger(vm_name=NAME, cause=TriggerCause.KPI_FALSE, at=0, not_before=60))
    back = d(AliveAgain(vm_name=NAME, at=30))
    assert short(back) == [] and back.notes
    assert short(d(Tick(at=60))) == [] and d.book.runs == {}


def test_a_deleted_deployment_cancels_the_recovery() -> None:
    d = Driver(subject())
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    cancelled = d(Cancel(vm_name=NAME, reason=CancelReason.DELETED, at=5))
    assert short(cancelled) == ["CANCELLED:ok"]
    assert cancelled.notices[0].message == f"Recovery: Recovery cancelled for VM: [{NAME}]"
    late = d.done(6, ok=True)
    assert short(late) == [] and "stale" in late.notes[0]


def test_cancel_before_recovery_began_reports_nothing() -> None:
    d = Driver(subject())
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0, not_before=60))
    assert short(d(Cancel(vm_name=NAME, reason=CancelReason.MOVED, at=5))) == []
    assert short(d(Tick(at=60))) == []


def test_manual_recovery_type_waits_for_recovery_vm_action() -> None:
    d = Driver(subject(kind=RecoveryType.MANUAL))
    ignored = d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    assert short(ignored) == [] and "MANUAL" in ignored.notes[0]
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.MANUAL, at=1))) == [
        "INIT:ok", "do:Reboot", "state:RECOVERING",
    ]  # fmt: skip


def test_after_a_failed_recovery_the_vm_stays_in_error_until_the_northbound_acts() -> None:
    d = Driver(subject())
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    d.done(1, ok=False)
    assert short(d(Tick(at=601))) == ["COMPLETE:FAIL", "state:ERROR"]
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.BOOTUP_EXPIRED, at=700))) == []
    d(Cancel(vm_name=NAME, reason=CancelReason.MOVED, at=800))  # moved to CSP-2
    assert d.book.failed == frozenset()
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.KPI_FALSE, at=900))) == [
        "INIT:ok", "do:Reboot", "state:RECOVERING",
    ]  # fmt: skip


def test_manual_do_restarts_a_failed_recovery() -> None:
    d = Driver(subject())
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    d.done(1, ok=False)
    d(Tick(at=601))
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.MANUAL, at=700)))[0] == "INIT:ok"


def test_unknown_vm_is_noted_not_recovered() -> None:
    d = Driver(subject())
    out = d(Trigger(vm_name="other", cause=TriggerCause.MANUAL, at=0))
    assert short(out) == [] and "not a known VM" in out.notes[0]


def restarted(d: Driver, *, at: float) -> RecoveryEffects:
    """The daemon restarted: the book resumed, as the coordinator does at start-up."""
    d.book, effects = resume(d.book, at=at, subjects=d.subjects, new_uuid=lambda: next(d.ids))
    if effects.steps:
        d.seq = effects.steps[-1].seq
    return effects


def test_a_reboot_cut_by_a_restart_is_run_again_and_reported_from_its_new_outcome() -> None:
    """Found by the crash matrix's recovery rows (recovery-vm-down @ after-intent and
    @ recovery-book-1): killed with the recovery's step durable but not run, the restart's
    resync started the VM itself (VM_STARTED, SERVICE_UPDATED, events the recovery does not
    have). A start or reboot the crash cut is now run again by the recovery itself (running
    it twice does what running it once does); its events are those it has without the
    crash, once each."""
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=1))
    first = d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    assert short(first) == ["INIT:ok", "do:Reboot", "state:RECOVERING"]
    cut = d.seq
    again = restarted(d, at=1000)
    assert short(again) == ["do:Reboot"]  # no second INIT
    assert again.steps[0].seq != cut and again.steps[0].action.vm == VM
    run = d.book.runs[NAME]
    assert run.phase is Phase.STEP and not run.cut and run.deadline is None
    assert short(d(StepOutcome(vm_name=NAME, seq=cut, at=1001, ok=True))) == []  # stale
    assert short(d(AliveAgain(vm_name=NAME, at=1002))) == []  # the new outcome decides
    assert short(d.done(1003, ok=True)) == ["REBOOT:ok"]
    assert d.book.runs[NAME].deadline == 1603  # boot time from the new outcome
    assert short(d(AliveAgain(vm_name=NAME, at=1010))) == ["COMPLETE:ok", "state:ALIVE"]
    assert NAME not in d.book.runs


def test_a_start_of_a_stopped_vm_cut_by_a_restart_is_run_again() -> None:
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=1))
    d(Trigger(vm_name=NAME, cause=TriggerCause.VM_STOPPED, at=0))
    again = restarted(d, at=50)
    assert short(again) == ["do:PowerOn"]
    assert isinstance(again.steps[0].action, PowerOn) and again.steps[0].action.report is None
    assert short(d.done(51, ok=False, failure="host CSP-1 does not answer")) == ["REBOOT:FAIL"]


def test_an_undeploy_cut_by_a_restart_is_not_run_twice() -> None:
    d = Driver(subject(RecoveryAction.REDEPLOY_ONLY, retries=2))
    assert short(d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0)))[1] == "do:DeleteVm"
    assert short(restarted(d, at=1000)) == []
    run = d.book.runs[NAME]
    assert run.phase is Phase.AWAITING_ALIVE and run.deadline == 1600 and run.cut
    assert short(d.done(1001, ok=True)) == []  # the lost step's outcome is stale
    # its event is owed: a failure once the boot time ran out, then the second attempt (not
    # the first again)
    over = d(Tick(at=1600))
    assert short(over) == ["UNDEPLOYED:FAIL", "do:DeleteVm"]
    assert "outcome was lost in a restart" in (over.notices[0].failure or "")
    assert short(d.done(1601, ok=True)) == ["UNDEPLOYED:ok", "do:CreateVm"]


def test_a_recovery_awaiting_alive_gets_its_boot_time_again_after_a_restart() -> None:
    """Found by the crash matrix's recovery rows: killed right after VM_RECOVERY_REBOOT was
    logged, the restart took longer than the wait left, and COMPLETE FAILURE came for a VM
    that was alive (nobody had watched it meanwhile)."""
    d = Driver(subject(RecoveryAction.REBOOT_ONLY, retries=2))
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    assert short(d.done(10, ok=True)) == ["REBOOT:ok"]
    assert d.book.runs[NAME].deadline == 610
    assert short(restarted(d, at=605)) == []
    assert d.book.runs[NAME].deadline == 1205 and not d.book.runs[NAME].cut
    assert short(d(Tick(at=700))) == []
    assert short(d(AliveAgain(vm_name=NAME, at=710))) == ["COMPLETE:ok", "state:ALIVE"]


def test_a_step_cut_by_a_restart_is_reported_once_the_vm_is_alive() -> None:
    """Found by the crash matrix's recovery rows: killed after the step's intent or before
    its outcome, the restarted daemon never sent the step's event (the VM alive again). A
    step not run again (a redeploy) is now owed and reported before COMPLETE."""
    d = Driver(subject(RecoveryAction.REDEPLOY_ONLY, retries=2))
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    assert short(d.done(5, ok=True)) == ["UNDEPLOYED:ok", "do:CreateVm"]
    assert short(restarted(d, at=1000)) == []
    assert short(d(AliveAgain(vm_name=NAME, at=1005))) == [
        "DEPLOYED:ok", "COMPLETE:ok", "state:ALIVE",
    ]  # fmt: skip
    assert NAME not in d.book.runs


def test_recovery_event_renders_the_seed_fields() -> None:
    notice = RecoveryNotice(
        event=EventType.VM_RECOVERY_COMPLETE, ok=False, vm_name=NAME, source=VM, target=VM,
        connector_id="CSP-1",
    )  # fmt: skip
    source = VmDetails(
        vmid=VMID, vmname=NAME, generated_vmname=NAME, vim_id="CSP-1", vim_project="CSP-1"
    )
    event = recovery_event(
        notice, depname="dep", tenant="demo", tenant_id=None,
        depid="06c94f58-b753-425b-b97c-f7adb9140ead", vm_group="group", source=source,
    )  # fmt: skip
    xml = esc_event_xml(event).decode()
    assert "<status>FAILURE</status><status_code>500</status_code>" in xml
    assert (
        f"<status_message>Recovery: Recovery completed with errors for VM: [{NAME}]"
        "</status_message>" in xml
    )
    assert "<tenant_id>demo</tenant_id>" in xml and "<vm_target>" in xml
    assert xml.index("<vm_source>") < xml.index("<vm_target>") < xml.index("<event>")
    init = recovery_event(
        RecoveryNotice(event=EventType.VM_RECOVERY_INIT, ok=True, vm_name=NAME, source=VM),
        depname="dep", tenant="demo", tenant_id="demo", depid="x", vm_group="group",
        source=source,
    )  # fmt: skip
    assert init.vm_target is None and init.status_code == 200


def test_vm_states_are_lifecycle_states() -> None:
    d = Driver(subject())
    effects = d(Trigger(vm_name=NAME, cause=TriggerCause.MANUAL, at=0))
    assert effects.vm_states == ((NAME, VmLifecycleState.RECOVERING),)


def test_the_book_survives_json_and_resumes() -> None:
    import json  # noqa: PLC0415

    from esc_orch.monitor.snapshot import book_from_json, book_to_json  # noqa: PLC0415

    d = Driver(subject(RecoveryAction.REBOOT_THEN_REDEPLOY, retries=2))
    d(Trigger(vm_name=NAME, cause=TriggerCause.HOST_DOWN, at=0))
    d.done(1, ok=False, failure="down")
    d(Tick(at=601))  # undeploy issued
    d.book = d.book.__class__(
        runs=d.book.runs, failed=frozenset({"other"}), next_seq=d.book.next_seq
    )
    text = json.dumps(book_to_json(d.book))
    back = book_from_json(json.loads(text))
    assert back == d.book
    resumed, effects = resume(back, at=2000, subjects=d.subjects, new_uuid=lambda: next(d.ids))
    assert resumed.runs[NAME].phase is Phase.AWAITING_ALIVE and effects.steps == ()
    with pytest.raises(ValueError, match="version"):
        book_from_json({"version": 9})
