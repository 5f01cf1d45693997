"""Power adjustments, the STOPPED service state and the no-progress guard."""

from __future__ import annotations

from esc_orch.reconcile import DeploymentState, VmLifecycleState
from esc_orch.vim import PowerState, VmState
from esc_orch.vim.fake import FakeConnector
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment

DEP = seed_deployment()


async def test_a_vm_found_stopped_is_started_again() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (vm,) = lab.vms("csp-1").values()
    vm.power = PowerState.STOPPED
    lab.cluster.gluster_holder.clear()
    outcome = await reactor.run(target(DEP, resync=True))
    assert outcome.ok and outcome.steps == 1
    assert lab.events.types()[3:] == ["VM_STARTED", "SERVICE_UPDATED"]
    assert lab.running() == [("csp-1", vm.spec.name)]


async def test_vms_wanted_off_stop_the_service() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    assert (await reactor.run(target(DEP, stopped=frozenset({name})))).ok
    assert lab.running() == []
    status = reactor.status("name1", "dep")
    assert status is not None and status.state is DeploymentState.STOPPED
    assert status.vms[0].state is VmLifecycleState.STOPPED
    assert lab.events.types()[3:] == ["VM_STOPPED", "SERVICE_UPDATED"]


class BlindConnector(FakeConnector):
    """Creates VMs but never lists them: the reactor would loop without its guard."""

    async def list_vms(self) -> tuple[VmState, ...]:
        await super().list_vms()
        return ()


async def test_a_step_without_visible_effect_fails_instead_of_looping() -> None:
    lab = Lab()
    for cid in ("CSP-1", "CSP-1-local", "CSP-1-cluster"):  # every connector to host csp-1
        config = lab.connectors[cid].config
        lab.connectors[cid] = BlindConnector(config=config, host=lab.hosts["csp-1"])
    outcome = await lab.reactor().run(target(DEP))
    assert not outcome.ok and "had no visible effect" in (outcome.reason or "")
    assert len(lab.vms("csp-1")) == 1  # ensure_vm is idempotent: still one VM
