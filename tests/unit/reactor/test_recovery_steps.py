"""Recovery steps run by the reactor, and VM_ALIVE from the KPI (issue 10), on fake hosts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from esc_orch.model.actions import CreateVm, DeleteReason, DeleteVm, PowerOn, Reboot
from esc_orch.model.failure import FailureCause, RecoveryFailed
from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.model.ports import StepStatus
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment

DEP = seed_deployment()
GROUP = "Group1"


class Wall:
    """The reactor's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


async def _deployed(lab: Lab, wall: Wall | None = None, **kw: object) -> tuple[object, str]:
    reactor = lab.reactor(clock=wall or Wall())
    outcome = await reactor.run(target(DEP, **kw))  # type: ignore[arg-type]
    assert outcome.ok
    record = reactor.status("name1", "dep")
    assert record is not None
    return reactor, record.vms[0].name


async def test_a_monitored_group_gets_vm_alive_and_service_alive_from_the_monitor() -> None:
    lab = Lab()
    reactor, name = await _deployed(lab, alive_by_monitor=frozenset({GROUP}))
    assert lab.events.types() == ["VM_DEPLOYED"]  # no stand-in VM_ALIVE, SERVICE_ALIVE owed
    record = reactor.status("name1", "dep")  # type: ignore[attr-defined]
    assert record.alive_owed and not record.vms[0].alive and record.run is None
    await reactor.recovery.alive(name)  # type: ignore[attr-defined]
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
    await reactor.recovery.alive(name)  # type: ignore[attr-defined]
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]  # once
    record = reactor.status("name1", "dep")  # type: ignore[attr-defined]
    assert not record.alive_owed and record.vms[0].state is VmLifecycleState.ALIVE


async def test_a_deploy_left_to_the_monitor_settles_its_commit_owed_service_event() -> None:
    """Found by the crash matrix's recovery rows: the deploy run that leaves SERVICE_ALIVE to
    the monitor (``alive_owed``) did not settle its commit's owed service event (the store's
    ``lifecycle_owed_run``), so every later restart sent a stray SERVICE_UPDATED. The debt
    moves to ``alive_owed`` in the same record: the record settles the commit's txid."""
    lab = Lab()
    reactor, _name = await _deployed(lab, alive_by_monitor=frozenset({GROUP}), txid=7)
    record = reactor.status("name1", "dep")  # type: ignore[attr-defined]
    assert record.alive_owed and record.settled_txid == 7


async def test_an_unmonitored_group_keeps_the_first_seen_running_stand_in() -> None:
    lab = Lab()
    await _deployed(lab)
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]


async def test_a_reboot_is_journaled_and_sets_the_boot_time() -> None:
    lab, wall = Lab(), Wall()
    reactor, _name = await _deployed(lab, wall)
    record = reactor.status("name1", "dep")  # type: ignore[attr-defined]
    vm = record.vms[0]
    booted = vm.booted_at
    assert booted == wall.at
    wall.at += timedelta(seconds=30)
    result = await reactor.recovery.execute(  # type: ignore[attr-defined]
        Reboot(vm=vm.identity, connector_id=vm.connector_id, report=None)
    )
    assert result.ok
    intent, outcome = lab.journal.entries[-1]
    assert isinstance(intent.action, Reboot) and outcome.status is StepStatus.DONE
    after = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert after.booted_at == booted + timedelta(seconds=30)
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]  # no report


async def test_a_reboot_on_a_dead_host_fails_with_its_typed_failure() -> None:
    lab = Lab()
    reactor, _name = await _deployed(lab)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    lab.hosts["csp-1"].down = True
    result = await reactor.recovery.execute(  # type: ignore[attr-defined]
        Reboot(vm=vm.identity, connector_id=vm.connector_id, report=None)
    )
    assert not result.ok and result.failure is not None
    assert result.failure.cause is FailureCause.RETRIES_EXHAUSTED
    assert lab.journal.entries[-1][1].status is StepStatus.FAILED


async def test_a_redeploy_records_the_new_vmid_as_the_identity() -> None:
    lab = Lab()
    reactor, name = await _deployed(lab)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert vm.applied is not None
    undeploy = DeleteVm(
        vm=vm.identity, connector_id=vm.connector_id, keep_disk=False,
        reason=DeleteReason.UNDEPLOY, report=None,
    )  # fmt: skip
    assert (await reactor.recovery.execute(undeploy)).ok  # type: ignore[attr-defined]
    assert lab.vms("csp-1") == {}
    new = replace(vm.identity, vmid="new-vmid")
    redeploy = CreateVm(
        vm=new, connector_id=vm.connector_id, vim_project=vm.vim_project, spec=vm.applied.spec,
        report=None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert (await reactor.recovery.execute(redeploy)).ok  # type: ignore[attr-defined]
    after = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert after.identity.vmid == "new-vmid" and after.name == name
    assert name in lab.vms("csp-1")
    # the next run keeps the new identity: nothing to do
    outcome = await reactor.run(target(DEP, resync=True))  # type: ignore[attr-defined]
    assert outcome.ok and outcome.steps == 0


async def test_recovery_states_are_shown_over_the_lifecycle_state() -> None:
    lab = Lab()
    reactor, name = await _deployed(lab)
    steps = reactor.recovery  # type: ignore[attr-defined]
    steps.set_vm(name, recovery=VmLifecycleState.RECOVERING)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert vm.shown_state is VmLifecycleState.RECOVERING
    failure = RecoveryFailed(vm_name=name, connector_id="CSP-1", problems=("not alive within 6 s",))
    steps.set_vm(name, recovery=VmLifecycleState.ERROR, failure=failure)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert vm.shown_state is VmLifecycleState.ERROR
    assert vm.last_failure is not None and vm.last_failure.cause is FailureCause.RECOVERY_FAILED
    assert "not alive within 6 s" in vm.last_failure.message
    steps.set_vm(name, recovery=VmLifecycleState.ALIVE)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    assert vm.shown_state is VmLifecycleState.ALIVE and vm.last_failure is None


async def test_a_reboot_of_a_vm_the_vim_shows_stopped_is_a_start() -> None:
    lab = Lab()
    reactor, name = await _deployed(lab)
    vm = reactor.status("name1", "dep").vms[0]  # type: ignore[attr-defined]
    await lab.connectors[vm.connector_id].power_off(name=name)
    result = await reactor.recovery.execute(  # type: ignore[attr-defined]
        Reboot(vm=vm.identity, connector_id=vm.connector_id, report=None)
    )
    assert result.ok
    intent, outcome = lab.journal.entries[-1]
    assert isinstance(intent.action, PowerOn) and outcome.status is StepStatus.DONE
    assert lab.running() == [("csp-1", name)]
