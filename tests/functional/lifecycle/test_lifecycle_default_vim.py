"""A deployment without a locator lands on the default VIM connector (issue #12).

Three emulated CSP hosts, the real daemon over SSH: with CSP-3 marked default, the seed
payload without its locator is deployed on CSP-3; an edit that leaves the group without a
default connector is refused at edit time, and nothing is deployed for it.
"""

from __future__ import annotations

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from esc_orch.model.schema import ESC_NS
from functional.lifecycle.support import (
    Cluster,
    cluster,
    connect,
    dep_state,
    edit,
    events_until,
    payload,
    short,
)

__all__ = ["cluster"]

UNPLACED = (
    payload("deploy_csp_1.xml")
    .replace("<vim_id>CSP-1</vim_id>", "")
    .replace("<vim_project>CSP-1</vim_project>", "")
)
DEFAULT = "<property><name>default</name><value>true</value></property>"


def test_a_group_without_locator_runs_on_the_default_connector(cluster: Cluster) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        connectors = cluster.connectors_xml()
        edit(m, f"<config>{connectors}</config>")

        # Three connectors, none marked: refused at edit time, naming the locator.
        with pytest.raises(RPCError) as refused:
            edit(m, UNPLACED)
        assert refused.value.tag == "data-missing"
        assert refused.value.path is not None and refused.value.path.endswith("/esc:locator")
        assert "no default VIM connector" in str(refused.value.message)
        assert dep_state(m) == {}

        # Mark CSP-3 the default: the same payload is accepted and deployed there.
        marked = connectors.split("<id>CSP-3</id>", 1)
        marked[1] = marked[1].replace("<properties>", f"<properties>{DEFAULT}", 1)
        edit(m, f"<config>{'<id>CSP-3</id>'.join(marked)}</config>")
        edit(m, UNPLACED)
        deployed = events_until(m, "SERVICE_ALIVE")
        assert [short(e) for e in deployed] == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
        vm = deployed[0].vm_source
        assert vm is not None and vm.vim_id == "CSP-3"
        assert cluster.all_services() == {vm.vmname: ["CSP-3"]}
        assert dep_state(m)["instances"] == [(vm.vmname, "CSP-3", "CSP-3")]

        # ESC's opdata paths, as an ESC client polls them (XPath and subtree filters).
        select = (
            "/esc_datamodel/opdata/tenants/tenant[name='name1']/deployments"
            "[deployment_name='dep']/state_machine/vm_state_machines"
            f"/vm_state_machine[vm_name='{vm.vmname}']/state"
        )
        reply = etree.fromstring(m.get(filter=("xpath", select)).data_xml.encode())
        assert [s.text for s in reply.iter(f"{{{ESC_NS}}}state")] == ["VM_ALIVE_STATE"]
        subtree = (
            f'<esc_datamodel xmlns="{ESC_NS}"><opdata><tenants><tenant><name>name1</name>'
            "<deployments><deployment_name>dep</deployment_name><state_machine><state/>"
            "</state_machine></deployments></tenant></tenants></opdata></esc_datamodel>"
        )
        reply = etree.fromstring(m.get(filter=("subtree", subtree)).data_xml.encode())
        assert [s.text for s in reply.iter(f"{{{ESC_NS}}}state")] == ["SERVICE_ACTIVE_STATE"]
