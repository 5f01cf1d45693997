"""Deploy, move (scenario 1) and undeploy the seed payload for real, with the exact escEvents.

Three emulated CSP hosts sharing a Gluster volume, the real daemon, ncclient subscribed to
escEvent; the VM is checked on the hosts themselves (their REST API) and in opdata.
"""

from __future__ import annotations

from functional.lifecycle.support import (
    VM_NAME,
    Cluster,
    cluster,
    connect,
    delete_deployment,
    dep_state,
    edit,
    events_until,
    payload,
    short,
)

__all__ = ["cluster"]


def test_deploy_move_undeploy_seed(cluster: Cluster) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, payload("deploy_csp_1.xml"))
        deployed = events_until(m, "SERVICE_ALIVE")
        assert [short(e) for e in deployed] == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
        vm = deployed[0].vm_source
        assert vm is not None and vm.vmname is not None and VM_NAME.match(vm.vmname)
        assert vm.generated_vmname == vm.vmname and vm.vim_id == "CSP-1"
        assert {e.depid for e in deployed} == {deployed[0].depid}
        assert all(e.tenant == "name1" and e.depname == "dep" for e in deployed)
        assert cluster.all_services() == {vm.vmname: ["CSP-1"]}
        assert cluster.services("CSP-1")[vm.vmname] == "on"
        state = dep_state(m)
        assert state["state"] == "SERVICE_ACTIVE_STATE"
        assert state["depid"] == deployed[0].depid
        assert state["vms"] == {vm.vmname: "VM_ALIVE_STATE"}
        assert state["instances"] == [(vm.vmname, "CSP-1", "CSP-1")]

        # Scenario 1: the locator moves to CSP-2; same identity, VM really moves.
        edit(m, payload("deploy_csp_2.xml"))
        moved = events_until(m, "SERVICE_UPDATED")
        assert [short(e) for e in moved] == ["VM_UPDATED LOCATOR_UPDATED", "SERVICE_UPDATED"]
        assert moved[0].status_message == "VIM Locator Updated Successfully"
        assert moved[1].status_message == "Service group update completed successfully"
        source = moved[0].vm_source
        assert source is not None
        assert (source.vmid, source.vmname, source.generated_vmname) == (
            vm.vmid,
            vm.vmname,
            vm.vmname,
        )
        assert (source.vim_id, source.vim_project, source.hostname) == ("CSP-2", "CSP-2", "CSP-2")
        assert cluster.all_services() == {vm.vmname: ["CSP-2"]}
        assert cluster.services("CSP-2")[vm.vmname] == "on"
        state = dep_state(m)
        assert state["state"] == "SERVICE_ACTIVE_STATE"
        assert state["instances"] == [(vm.vmname, "CSP-2", "CSP-2")]

        delete_deployment(m)
        gone = events_until(m, "SERVICE_UNDEPLOYED")
        assert [short(e) for e in gone] == ["VM_UNDEPLOYED", "SERVICE_UNDEPLOYED"]
        assert cluster.all_services() == {}
        assert dep_state(m) == {}
