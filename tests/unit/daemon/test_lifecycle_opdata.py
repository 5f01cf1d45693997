"""opdata/tenants as the daemon serves it is valid against yang/esc.yang (config-false data).

Built from the reactor's status after real runs on the fake cluster (deployed, moved,
stopped), then parsed by libyang with state data allowed and validated.
"""

from __future__ import annotations

import asyncio

from lxml import etree

from esc_orch.daemon.opdata import tenants_element
from esc_orch.model.errors import NC_BASE_NS
from esc_orch.model.record import DeploymentRecord
from esc_orch.model.schema import EO_NS, ESC_NS
from esc_orch.model.validate import _parsed, lib, to_rpc_error
from esc_orch.northbound.filters import apply_filter
from esc_orch.vim.errors import PermanentVimError
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_locator


def _validate_state(tenants: etree._Element) -> list[str]:
    top = etree.Element(f"{{{ESC_NS}}}esc_datamodel", nsmap={None: ESC_NS})  # type: ignore[dict-item]
    etree.SubElement(top, f"{{{ESC_NS}}}opdata").append(tenants)
    xml = etree.tostring(top)
    with _parsed(
        xml, parse_flags=lib.LYD_PARSE_STRICT, validate_flags=lib.LYD_VALIDATE_PRESENT
    ) as (_tree, errors):
        return [str(to_rpc_error(e)) for e in errors]


def _statuses() -> list[DeploymentRecord]:
    lab = Lab()
    dep = seed_deployment()

    async def run() -> list[DeploymentRecord]:
        reactor = lab.reactor()
        await reactor.run(target(dep))
        await reactor.run(target(with_locator(dep, "CSP-2")))
        await reactor.run(target(dep, tenant="t2"))
        vm = next(iter(lab.hosts["csp-2"].vms))
        await reactor.run(target(with_locator(dep, "CSP-2"), stopped=frozenset({vm})))
        return [s for key in reactor.deployments() if (s := reactor.status(*key)) is not None]

    return asyncio.run(run())


def test_opdata_is_valid_state_data() -> None:
    statuses = _statuses()
    tenants = tenants_element(statuses)
    assert _validate_state(tenants) == []
    ns = {"e": ESC_NS}
    dep = tenants.xpath("e:tenant[e:name='name1']/e:deployments", namespaces=ns)[0]
    assert dep.findtext("e:state_machine/e:state", namespaces=ns) == "SERVICE_STOPPED_STATE"
    instance = dep.find("e:vm_group/e:vm_instance", ns)
    assert instance.findtext("e:vim_id", namespaces=ns) == "CSP-2"
    assert instance.find("e:interfaces/e:interface/e:nicid", ns) is not None


def test_invalid_opdata_is_caught() -> None:
    tenants = tenants_element(_statuses())
    state = tenants.find(f".//{{{ESC_NS}}}state_machine/{{{ESC_NS}}}state")
    assert state is not None
    state.text = "NOT_A_STATE"
    assert _validate_state(tenants) != []


def _served(tenants: etree._Element) -> etree._Element:
    """The opdata as a ``get`` reply's ``<data>`` holds it."""

    data = etree.Element(f"{{{NC_BASE_NS}}}data")
    top = etree.SubElement(data, f"{{{ESC_NS}}}esc_datamodel")
    etree.SubElement(top, f"{{{ESC_NS}}}opdata").append(tenants)
    return data


def test_vm_states_answer_at_esc_paths_with_xpath_and_subtree() -> None:

    tenants = tenants_element(_statuses())
    ns = {"e": ESC_NS}
    vm_name = tenants.xpath(
        "e:tenant[e:name='name1']/e:deployments/e:state_machine/e:vm_state_machines"
        "/e:vm_state_machine/e:vm_name",
        namespaces=ns,
    )[0].text
    assert vm_name
    select = (
        "/esc_datamodel/opdata/tenants/tenant[name='name1']/deployments[deployment_name='dep']"
        f"/state_machine/vm_state_machines/vm_state_machine[vm_name='{vm_name}']/state"
    )
    flt = etree.Element(f"{{{NC_BASE_NS}}}filter", type="xpath", select=select)
    out = apply_filter(_served(tenants), flt)
    assert [s.text for s in out.iter(f"{{{ESC_NS}}}state")] == ["VM_STOPPED_STATE"]

    subtree = etree.fromstring(
        f'<filter xmlns="{NC_BASE_NS}"><esc_datamodel xmlns="{ESC_NS}"><opdata><tenants>'
        "<tenant><name>name1</name><deployments><deployment_name>dep</deployment_name>"
        "<state_machine><state/><vm_state_machines><vm_state_machine><vm_name>"
        f"{vm_name}</vm_name><state/></vm_state_machine></vm_state_machines></state_machine>"
        "</deployments></tenant></tenants></opdata></esc_datamodel></filter>"
    )
    out = apply_filter(_served(tenants), subtree)
    assert [s.text for s in out.iter(f"{{{ESC_NS}}}state")] == [
        "SERVICE_STOPPED_STATE",
        "VM_STOPPED_STATE",
    ]

    group = (
        "/esc_datamodel/opdata/tenants/tenant[name='name1']/deployments[deployment_name='dep']"
        "/vm_group[name='Group1']/vm_instance/vim_id"
    )
    flt = etree.Element(f"{{{NC_BASE_NS}}}filter", type="xpath", select=group)
    out = apply_filter(_served(tenants), flt)
    assert [s.text for s in out.iter(f"{{{ESC_NS}}}vim_id")] == ["CSP-2"]


def test_the_step_in_flight_and_the_last_failure_are_valid_eo_data() -> None:
    lab = Lab()
    dep = seed_deployment()
    gate = asyncio.Event()

    async def run() -> tuple[etree._Element, etree._Element]:
        reactor = lab.reactor()
        await reactor.run(target(dep))
        lab.hosts["csp-2"].fail_next("ensure_vm", PermanentVimError("no such image"))
        await reactor.run(target(with_locator(dep, "CSP-2")))
        failed = tenants_element([r for k in reactor.deployments() if (r := reactor.status(*k))])
        held = Lab(gate=gate)
        slow = held.reactor()
        slow.submit(target(dep))
        await asyncio.wait_for(held.entered.wait(), 5)  # mid-step: ensure_vm is waiting
        busy = tenants_element([r for k in slow.deployments() if (r := slow.status(*k))])
        gate.set()
        await slow.drain()
        return failed, busy

    failed, busy = asyncio.run(run())
    ns = {"e": ESC_NS, "eo": EO_NS}
    assert _validate_state(failed) == []
    (note,) = failed.xpath("//e:deployments/eo:last_failure", namespaces=ns)
    # the move failed on CSP-2 and was rolled back: the VM is on CSP-1 again
    assert note.findtext("eo:cause", namespaces=ns) == "rolled-back"
    assert "no such image" in (note.findtext("eo:message", namespaces=ns) or "")
    assert note.findtext("eo:time", namespaces=ns)
    assert failed.xpath("//e:vm_instance/eo:last_failure/eo:vim_id/text()", namespaces=ns) == [
        "CSP-1"
    ]
    assert _validate_state(busy) == []
    (step,) = busy.xpath("//e:deployments/eo:current_step", namespaces=ns)
    assert step.findtext("eo:action", namespaces=ns) == "CreateVm"
    assert step.findtext("eo:vim_id", namespaces=ns) == "CSP-1"
    assert busy.xpath("//e:vm_instance/eo:current_step/eo:action/text()", namespaces=ns) == [
        "CreateVm"
    ]
