"""Faults: temporary errors retried on a fake clock, permanent ones reported, dead hosts."""

from __future__ import annotations

import pytest

from esc_orch.model.failure import FailureCause, cause_of
from esc_orch.reconcile import DeploymentState, EventStatus, VmLifecycleState, VmUpdateType
from esc_orch.vim import (
    CapabilityNotSupported,
    PermanentVimError,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
)
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_group, with_locator, with_storage

DEP = seed_deployment()


async def test_temporary_faults_are_retried_with_backoff() -> None:
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", TemporaryVimError("503", retry_after=0.5), times=2)
    outcome = await lab.reactor().run(target(DEP))
    assert outcome.ok
    assert lab.clock.sleeps == [1.0, 2.0]  # exponential, on the fake clock
    assert len(lab.vms("csp-1")) == 1
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]


async def test_permanent_fault_reports_failure_and_error_state() -> None:
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", PermanentVimError("image not found on host"))
    reactor = lab.reactor()
    outcome = await reactor.run(target(DEP))
    assert not outcome.ok and "image not found on host" in (outcome.reason or "")
    assert lab.events.types() == ["VM_DEPLOYED/FAILURE", "SERVICE_ALIVE/FAILURE"]
    vm_event, service = lab.events.events
    assert (vm_event.status, vm_event.status_code) == (EventStatus.FAILURE, 500)
    assert "creating dep_Group1_0_" in vm_event.status_message
    assert "VIM connector CSP-1" in vm_event.status_message
    assert service.status_message.startswith("Service group deployment completed with errors: ")
    assert lab.clock.sleeps == []  # never retried
    status = reactor.status("name1", "dep")
    assert status is not None and status.state is DeploymentState.ERROR
    assert status.vms[0].state is VmLifecycleState.ERROR and status.last_failure
    # One failure, one sentence: the record's, the VM event's and the service event's agree.
    assert status.last_failure.cause is FailureCause.VIM_REJECTED
    assert status.last_failure.message == vm_event.status_message == outcome.reason
    assert service.status_message.endswith(status.last_failure.message)
    assert status.vms[0].last_failure == status.last_failure
    assert lab.vms("csp-1") == {}


async def test_temporary_faults_that_last_become_a_failure() -> None:
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", TemporaryVimError("503"), times=10)
    outcome = await lab.reactor().run(target(DEP))
    assert not outcome.ok
    assert "still failed after 4 tries" in (outcome.reason or "")
    assert "check that the host is up" in (outcome.reason or "")
    assert len(lab.clock.sleeps) == 3


async def test_rejected_credentials_say_what_to_fix() -> None:
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", VimAuthError("401"))
    outcome = await lab.reactor().run(target(DEP))
    assert "fix the users/credentials of vim_connector CSP-1" in (outcome.reason or "")


async def test_unreachable_target_is_waited_on_then_reported() -> None:
    lab = Lab()
    lab.hosts["csp-1"].down = True
    outcome = await lab.reactor().run(target(DEP))
    assert not outcome.ok and "CSP-1 is unreachable" in (outcome.reason or "")
    assert lab.clock.sleeps == [1.0, 2.0, 4.0]  # re-observed with backoff, not forever
    assert lab.events.types() == ["SERVICE_ALIVE/FAILURE"]


async def test_a_resync_while_a_host_is_silent_waits_visibly_and_reports_nothing() -> None:
    """A resync (start-up, periodic, re-arm) is nobody's update: a silent host is waited on,
    shown in the record's step (opdata eo:current_step), never a SERVICE_UPDATED FAILURE; once
    the host answers, the next resync converges and clears the wait."""
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    sent = len(lab.events.events)
    lab.hosts["csp-1"].down = True  # partitioned: the VM may still run there
    outcome = await reactor.run(target(DEP, resync=True))
    assert len(lab.events.events) == sent, lab.events.types()  # no SERVICE_UPDATED FAILURE
    assert outcome.failure is None
    record = reactor.status("name1", "dep")
    assert record is not None and record.state is DeploymentState.ACTIVE
    assert record.last_failure is None
    step = record.step
    assert step is not None and (step.action, step.connector_id) == ("WaitForHost", "CSP-1")
    assert "CSP-1 does not answer" in (step.detail or "")
    assert "retried as soon as it answers" in (step.detail or "")
    assert lab.clock.sleeps == [1.0, 2.0, 4.0]  # retried with backoff meanwhile
    lab.hosts["csp-1"].down = False
    again = await reactor.run(target(DEP, resync=True))
    assert again.ok and len(lab.events.events) == sent
    record = reactor.status("name1", "dep")
    assert record is not None and record.step is None


async def test_unsatisfiable_deployment_is_a_400_failure_before_any_vim_call() -> None:
    lab = Lab()
    outcome = await lab.reactor().run(target(with_group(DEP, flavor="NOPE")))
    assert not outcome.ok
    (service,) = lab.events.events
    assert (service.status, service.status_code) == (EventStatus.FAILURE, 400)
    assert "flavor 'NOPE' is not configured" in service.status_message
    assert "ensure_vm" not in lab.hosts["csp-1"].calls


async def test_a_failed_update_can_be_fixed_by_the_next_one() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    lab.hosts["csp-2"].fail_next("ensure_vm", PermanentVimError("no room"))
    failed = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert not failed.ok
    moved_failed = lab.events.events[3]
    assert moved_failed.status is EventStatus.FAILURE
    assert moved_failed.vm_update_type is VmUpdateType.LOCATOR_UPDATED
    # rolled back: put back on CSP-1 and running there again (it was left stopped before)
    assert [h for h, _ in lab.running()] == ["csp-1"]
    assert "put back on CSP-1 and runs there again" in (moved_failed.status_message or "")
    assert (await reactor.run(target(with_locator(DEP, "CSP-3")))).ok
    assert [h for h, _ in lab.running()] == ["csp-3"]
    assert lab.events.types()[-2:] == ["VM_UPDATED", "SERVICE_UPDATED"]


async def test_a_move_refused_for_capacity_is_rolled_back_with_the_real_cause() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-2"].fail_next("ensure_vm", VimCapacityError("not enough memory: 512 MB free"))
    failed = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert not failed.ok and failed.failure is not None
    assert cause_of(failed.failure) is FailureCause.ROLLED_BACK
    message = failed.reason or ""
    assert "not enough capacity (not enough memory: 512 MB free)" in message
    assert "VIM connector CSP-2" in message and "disk" not in message
    assert f"{name} was put back on CSP-1 and runs there again" in message
    assert lab.running() == [("csp-1", name)] and lab.vms("csp-2") == {}
    assert lab.events.types()[3:] == ["VM_UPDATED/FAILURE", "SERVICE_UPDATED/FAILURE"]


# -- scenario 2 ------------------------------------------------------------------------


async def test_scenario2_host_powered_off_vm_moves_and_stale_copy_goes_later() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.connectors["CSP-1"].crash_host()  # power lost: disk lock released, API gone
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert any("stale copy" in n and "CSP-1" in n for n in outcome.notes)
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    assert lab.events.events[3].status_message == "VIM Locator Updated Successfully"
    assert lab.running() == [("csp-2", name)]
    # CSP-1 comes back with its persisted (stopped) copy; a resync removes it, disk kept.
    lab.hosts["csp-1"].down = False
    assert name in lab.vms("csp-1")
    resync = await reactor.run(target(with_locator(DEP, "CSP-2"), resync=True))
    assert resync.ok and resync.steps == 1
    assert lab.vms("csp-1") == {} and lab.cluster.gluster_disks == {name}
    assert lab.running() == [("csp-2", name)]
    assert len(lab.events.events) == 5  # no escEvent: none of ESC's types says this
    (notice,) = lab.events.notices  # ours: eo:stale-copy-removed, with the facts
    assert (notice.depname, notice.tenant, notice.vm_group) == ("dep", "name1", "Group1")
    assert (notice.vmname, notice.vim_id, notice.placed_on) == (name, "CSP-1", "CSP-2")
    assert notice.action == "removed-disk-kept" and notice.power_found == "stopped"
    assert notice.vmid and notice.depid == lab.events.events[3].depid
    assert notice.message == (
        f"Stale copy of VM [{name}] found on VIM connector [CSP-1] was removed, keeping its "
        f"shared disk (the VM's own); {name} is placed on CSP-2"
    )


async def test_scenario2_partitioned_host_still_holding_the_disk_is_never_doubled() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True  # silent, but the VM still runs and holds its disk
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert not outcome.ok
    assert outcome.failure is not None and cause_of(outcome.failure) is FailureCause.PROOF_TIMED_OUT
    reason = outcome.reason or ""
    assert "was not started elsewhere after 60 s" in reason and "disk is still locked" in reason
    assert "confirm that CSP-1 is down (esc_nc_cli confirm-host-down)" in reason
    assert lab.running() == [("csp-1", name)]  # one copy only
    assert lab.vms("csp-2") == {}
    assert lab.events.types()[3:] == ["VM_UPDATED/FAILURE", "SERVICE_UPDATED/FAILURE"]
    assert 60 <= lab.clock.now < 80  # bounded by the proof timeout, not by retries


async def test_scenario2_local_disk_on_a_dead_host_waits_for_proof_then_says_how() -> None:
    lab = Lab()
    reactor = lab.reactor()
    local = with_storage(DEP, "local")
    assert (await reactor.run(target(local))).ok
    lab.connectors["CSP-1"].crash_host()
    outcome = await reactor.run(target(with_locator(local, "CSP-2")))
    reason = outcome.reason or ""
    assert not outcome.ok and "was not started elsewhere" in reason
    assert "power CSP-1 off" not in reason  # a local disk has no lock to release
    assert lab.vms("csp-2") == {}


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (VimCapacityError("not enough memory on host"), FailureCause.CAPACITY),
        (VimAuthError("HTTP 401"), FailureCause.CREDENTIALS_REFUSED),
        (CapabilityNotSupported("power", "CSP-1"), FailureCause.CAPABILITY_MISSING),
    ],
)
async def test_each_vim_error_class_is_its_own_cause(error: Exception, cause: FailureCause) -> None:
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", error)  # type: ignore[arg-type]
    reactor = lab.reactor()
    outcome = await reactor.run(target(DEP))
    assert outcome.failure is not None and outcome.failure.cause is cause
    record = reactor.status("name1", "dep")
    assert record is not None and record.last_failure is not None
    assert record.last_failure.cause is cause
    assert lab.events.events[0].status_message == record.last_failure.message
