"""Deploy, update, move and undeploy the seed deployment on a fake CSP cluster."""

from __future__ import annotations

from esc_orch.model.config import Scaling, StaticIpAddressPool
from esc_orch.model.events import esc_event_xml
from esc_orch.reactor import StepStatus
from esc_orch.reconcile import (
    DeploymentState,
    EventStatus,
    EventType,
    LifecycleOperation,
    VmLifecycleState,
    VmUpdateType,
)
from esc_orch.vim import Storage
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_group, with_locator

DEP = seed_deployment()


async def deployed(lab: Lab) -> tuple[object, str]:
    reactor = lab.reactor()
    outcome = await reactor.run(target(DEP))
    assert outcome.ok, outcome.reason
    (name,) = lab.vms("csp-1")
    return reactor, name


async def test_deploy_the_seed_payload() -> None:
    lab = Lab()
    reactor = lab.reactor()
    outcome = await reactor.run(target(DEP))
    assert outcome.ok and outcome.operation is LifecycleOperation.DEPLOY
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
    deployed_ev, alive, service = lab.events.events
    name = "dep_Group1_0_00000000-0000-4000-8000-000000001001"
    assert list(lab.vms("csp-1")) == [name]
    assert lab.vms("csp-1")[name].storage is Storage.GLUSTER
    assert deployed_ev.status_message == f"VIM Driver: VM successfully created, VM Name: [{name}]"
    assert alive.status_message == f"VM_Alive event received, VM ID: [{name}]"
    assert service.status_message == "Service group deployment completed successfully!"
    assert service.vm_source is None and service.vm_group is None
    for event in lab.events.events:
        assert (event.status, event.status_code) == (EventStatus.SUCCESS, 200)
        assert (event.depname, event.tenant, event.tenant_id) == ("dep", "name1", "name1")
        assert event.depid == "00000000-0000-4000-8000-000000001000"
    source = deployed_ev.vm_source
    assert source is not None
    assert (source.vmname, source.generated_vmname, source.vmid) == (
        name,
        name,
        "00000000-0000-4000-8000-000000001002",
    )
    assert (source.vim_id, source.vim_project, source.hostname) == ("CSP-1", "CSP-1", "csp-1")
    assert source.interfaces is not None
    nics = source.interfaces.interface
    assert [i.nicid for i in nics] == [0, 1]
    assert nics[1].admin_state_up is False
    assert nics[0].ip_address == "192.168.23.61"
    status = reactor.status("name1", "dep")
    assert status is not None and status.state is DeploymentState.ACTIVE
    assert [(v.identity.name, v.state, v.connector_id) for v in status.vms] == [
        (name, VmLifecycleState.ALIVE, "CSP-1")
    ]
    entries = lab.journal.entries
    assert entries and all(o is not None and o.status is StepStatus.DONE for _, o in entries)


async def test_second_run_with_nothing_to_do_reports_only_the_service() -> None:
    lab = Lab()
    reactor, _ = await deployed(lab)
    outcome = await reactor.run(target(DEP))  # type: ignore[attr-defined]
    assert outcome.ok and outcome.steps == 0 and outcome.operation is LifecycleOperation.UPDATE
    assert lab.events.types()[-1] == "SERVICE_UPDATED"
    resync = await reactor.run(target(DEP, resync=True))  # type: ignore[attr-defined]
    assert resync.ok and len(lab.events.events) == 4  # a quiet resync sends nothing


async def test_flavor_update_recreates_under_the_same_identity() -> None:
    lab = Lab()
    reactor, name = await deployed(lab)
    outcome = await reactor.run(target(with_group(DEP, flavor="FLAVOR_4_8192")))  # type: ignore[attr-defined]
    assert outcome.ok
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    updated, service = lab.events.events[3:]
    assert updated.vm_update_type is VmUpdateType.FLAVOR_UPDATED
    assert service.status_message == "Service group update completed successfully"
    assert list(lab.vms("csp-1")) == [name]
    assert lab.vms("csp-1")[name].spec.vcpus == 4
    assert lab.cluster.gluster_disks == {name}  # the disk was kept


async def test_scenario1_locator_update_moves_the_vm_to_csp2() -> None:
    lab = Lab()
    reactor, name = await deployed(lab)
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))  # type: ignore[attr-defined]
    assert outcome.ok, outcome.reason
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    moved, service = lab.events.events[3:]
    assert (moved.status, moved.status_code) == (EventStatus.SUCCESS, 200)
    assert moved.status_message == "VIM Locator Updated Successfully"
    assert moved.vm_update_type is VmUpdateType.LOCATOR_UPDATED
    assert (moved.depname, moved.tenant, moved.vm_group) == ("dep", "name1", "Group1")
    source = moved.vm_source
    assert source is not None
    assert (source.vmname, source.generated_vmname) == (name, name)
    assert source.vmid == lab.events.events[0].vm_source.vmid  # type: ignore[union-attr]
    assert (source.vim_id, source.vim_project, source.hostname) == ("CSP-2", "CSP-2", "csp-2")
    assert source.interfaces is not None
    assert [i.network for i in source.interfaces.interface] == ["Eth0-2", "Eth0-2"]
    assert service.status_message == "Service group update completed successfully"
    assert service.event.type is EventType.SERVICE_UPDATED
    assert lab.vms("csp-1") == {} and list(lab.vms("csp-2")) == [name]
    assert lab.running() == [("csp-2", name)]
    assert lab.cluster.gluster_disks == {name}  # shared disk never deleted
    calls = lab.hosts["csp-1"].calls
    assert calls.index("power_off") < calls.index("delete_vm")
    status = reactor.status("name1", "dep")  # type: ignore[attr-defined]
    assert status.vms[0].connector_id == "CSP-2" and status.state is DeploymentState.ACTIVE


async def test_scenario3_local_to_gluster_on_the_same_csp() -> None:
    lab = Lab()
    reactor = lab.reactor()
    local = with_locator(seed_deployment("deploy_csp_1_local.xml"), "CSP-1-local")
    assert (await reactor.run(target(local))).ok
    (name,) = lab.vms("csp-1")
    assert lab.vms("csp-1")[name].storage is Storage.LOCAL
    gluster = with_locator(seed_deployment("deploy_gluster.xml"), "CSP-1-cluster")
    outcome = await reactor.run(target(gluster))
    assert outcome.ok, outcome.reason
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    moved = lab.events.events[3]
    assert moved.status_message == "VIM Locator Updated Successfully"
    assert moved.vm_source is not None and moved.vm_source.vim_id == "CSP-1-cluster"
    vm = lab.vms("csp-1")[name]
    assert (vm.storage, vm.power) == (Storage.GLUSTER, "running")
    assert lab.hosts["csp-1"].local_disks == set() and lab.cluster.gluster_disks == {name}
    assert "copy_disk" in lab.hosts["csp-1"].calls
    assert "delete_vm" not in lab.hosts["csp-1"].calls  # the same VM, never a stale copy


async def test_undeploy_reports_each_vm_then_the_service() -> None:
    lab = Lab()
    reactor, _ = await deployed(lab)
    outcome = await reactor.run(target(None))  # type: ignore[attr-defined]
    assert outcome.ok and outcome.operation is LifecycleOperation.UNDEPLOY
    assert lab.events.types()[3:] == ["VM_UNDEPLOYED", "SERVICE_UNDEPLOYED"]
    undeployed, service = lab.events.events[3:]
    assert undeployed.status_message == "VIM Driver: VM successfully deleted"
    assert service.status_message == "Service group undeployment completed successfully"
    assert lab.vms("csp-1") == {} and lab.cluster.gluster_disks == set()
    assert reactor.status("name1", "dep") is None  # type: ignore[attr-defined]


async def test_scale_out_then_in_keeps_the_first_vm() -> None:
    lab = Lab()
    reactor, name = await deployed(lab)
    pool = StaticIpAddressPool(
        network="Eth0-2", netmask="255.255.255.0", ip_address=("192.168.23.61", "10.0.0.2")
    )
    two = with_group(
        DEP, scaling=Scaling(min_active=2, max_active=2, static_ip_address_pool=(pool,))
    )
    assert (await reactor.run(target(two))).ok  # type: ignore[attr-defined]
    assert len(lab.vms("csp-1")) == 2 and name in lab.vms("csp-1")
    assert lab.events.types()[3:] == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_UPDATED"]
    assert (await reactor.run(target(DEP))).ok  # type: ignore[attr-defined]
    assert list(lab.vms("csp-1")) == [name]
    assert lab.events.types()[6:] == ["VM_UNDEPLOYED", "SERVICE_UPDATED"]


async def test_events_render_as_the_seed_shows_them() -> None:
    lab = Lab()
    reactor, _ = await deployed(lab)
    assert (await reactor.run(target(with_locator(DEP, "CSP-2")))).ok  # type: ignore[attr-defined]
    xml = esc_event_xml(lab.events.events[3]).decode()
    order = ["<status>SUCCESS", "<status_code>200", "VIM Locator Updated Successfully",
             "<vm_update_type>LOCATOR_UPDATED", "<depname>dep", "<tenant>name1", "<depid>",
             "<vm_group>Group1", "<vm_source>", "<vim_id>CSP-2", "<vim_project>CSP-2",
             "<subnet/>", "</vm_source>", "<type>VM_UPDATED</type>"]  # fmt: skip
    positions = [xml.index(part) for part in order]
    assert positions == sorted(positions)
