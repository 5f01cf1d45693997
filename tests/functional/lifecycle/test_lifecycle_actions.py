"""vmAction / serviceAction on a deployed VM, refusals, and connector faults, for real.

One cluster and daemon for the whole module's scenario (start-up costs dominate). Faults:
a powered-off host (SIGKILL) and a host answering every request with 503 (``--error-rate 1``)
both end in FAILURE events and SERVICE_ERROR_STATE in opdata, never in a hang.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from functional.lifecycle.support import (
    ESC_NS,
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


EO_NS = "urn:esc-orch:yang:esc-orch"


def last_failure(m: Any, *, dep: str) -> tuple[str | None, str, str | None]:
    """(cause, message, time) of ``eo:last_failure`` of ``dep`` (``get esc_datamodel/opdata``)."""
    reply = m.get(filter=("subtree", f'<esc_datamodel xmlns="{ESC_NS}"><opdata/></esc_datamodel>'))
    data = etree.fromstring(reply.data_xml.encode())
    ns = {"e": ESC_NS, "eo": EO_NS}
    (failure,) = data.xpath(
        f"//e:deployments[e:deployment_name='{dep}']/eo:last_failure", namespaces=ns
    )
    return (
        failure.findtext("eo:cause", namespaces=ns),
        failure.findtext("eo:message", namespaces=ns) or "",
        failure.findtext("eo:time", namespaces=ns),
    )


def _rpc(m: Any, name: str, **leaves: str) -> None:
    """Send an ESC RPC; ``in-use`` (the previous action's run is finishing) is retried."""
    op = etree.Element(f"{{{ESC_NS}}}{name}", nsmap={None: ESC_NS})  # type: ignore[dict-item]
    for leaf, value in leaves.items():
        etree.SubElement(op, f"{{{ESC_NS}}}{leaf}").text = value
    deadline = time.monotonic() + 10
    while True:
        try:
            m.dispatch(op)
            return
        except RPCError as exc:
            if exc.tag != "in-use" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def vm_action(m: Any, action: str, vm: str) -> None:
    _rpc(m, "vmAction", actionType=action, vmName=vm, force="false")


def service_action(m: Any, action: str, dep: str = "dep") -> None:
    _rpc(
        m,
        "serviceAction",
        actionType=action,
        tenantName="name1",
        depName=dep,
        serviceName="-",
        serviceVersion="-",
    )


def test_actions_refusals_and_faults(cluster: Cluster) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, payload("deploy_csp_1.xml"))
        vm = events_until(m, "SERVICE_ALIVE")[0].vm_source
        assert vm is not None and vm.vmname is not None
        name = vm.vmname

        vm_action(m, "STOP", name)
        assert [short(e) for e in events_until(m, "VM_STOPPED")] == ["VM_STOPPED"]
        assert cluster.services("CSP-1")[name] == "off"
        assert dep_state(m)["vms"] == {name: "VM_STOPPED_STATE"}
        with pytest.raises(RPCError) as refused:
            vm_action(m, "REBOOT", name)
        assert refused.value.tag == "invalid-value" and "START" in str(refused.value.message)
        vm_action(m, "START", name)
        assert [short(e) for e in events_until(m, "VM_STARTED")] == ["VM_STARTED"]
        assert cluster.services("CSP-1")[name] == "on"
        vm_action(m, "REBOOT", name)
        assert [short(e) for e in events_until(m, "VM_REBOOTED")] == ["VM_REBOOTED"]

        service_action(m, "STOP")
        assert [short(e) for e in events_until(m, "SERVICE_STOPPED")] == [
            "VM_STOPPED",
            "SERVICE_STOPPED",
        ]
        assert dep_state(m)["state"] == "SERVICE_STOPPED_STATE"
        service_action(m, "START")
        assert [short(e) for e in events_until(m, "SERVICE_STARTED")] == [
            "VM_STARTED",
            "SERVICE_STARTED",
        ]
        assert dep_state(m)["state"] == "SERVICE_ACTIVE_STATE"
        service_action(m, "REBOOT")
        assert [short(e) for e in events_until(m, "SERVICE_REBOOTED")] == [
            "VM_REBOOTED",
            "SERVICE_REBOOTED",
        ]
        vm_action(m, "DISABLE_MONITOR", name)
        assert [short(e) for e in events_until(m, "VM_MONITOR_UNSET")] == ["VM_MONITOR_UNSET"]
        assert dep_state(m)["vms"] == {name: "VM_MONITOR_DISABLED_STATE"}
        vm_action(m, "ENABLE_MONITOR", name)
        assert [short(e) for e in events_until(m, "VM_MONITOR_SET")] == ["VM_MONITOR_SET"]

        # Refusals name what is wrong.
        with pytest.raises(RPCError) as unknown_vm:
            vm_action(m, "STOP", "dep_Group1_0_00000000-0000-4000-8000-000000000000")
        assert unknown_vm.value.tag == "data-missing"
        assert unknown_vm.value.path == "/esc:vmAction/esc:vmName"
        assert "dep_Group1_0_00000000" in str(unknown_vm.value.message)
        with pytest.raises(RPCError) as unknown_dep:
            service_action(m, "STOP", dep="nope")
        assert unknown_dep.value.tag == "data-missing" and "nope" in str(unknown_dep.value.message)
        assert unknown_dep.value.path == "/esc:serviceAction/esc:depName"
        with pytest.raises(RPCError) as recovery:
            _rpc(m, "recoveryVmAction", actionType="DO", vmName=name)
        assert recovery.value.tag == "operation-not-supported"
        edit(m, payload("deploy_csp_2.xml"))  # a move is in progress: actions wait
        with pytest.raises(RPCError) as busy:
            m.dispatch(
                etree.fromstring(
                    f'<vmAction xmlns="{ESC_NS}"><actionType>STOP</actionType>'
                    f"<vmName>{name}</vmName></vmAction>"
                )
            )
        assert busy.value.tag == "in-use" and "name1/dep" in str(busy.value.message)
        assert [short(e) for e in events_until(m, "SERVICE_UPDATED")][-1] == "SERVICE_UPDATED"

        # Faults: a powered-off host, then a host that answers 503 to everything.
        cluster.hosts["CSP-3"].kill()
        on_dead = (
            payload("deploy_csp_1.xml")
            .replace("CSP-1", "CSP-3")
            .replace("<name>dep</name>", "<name>dead</name>")
        )
        edit(m, on_dead)
        failed = events_until(m, "SERVICE_ALIVE", dep="dead")
        assert [short(e) for e in failed] == ["SERVICE_ALIVE/FAILURE"]
        assert failed[0].status_code == 500 and "CSP-3" in str(failed[0].status_message)
        assert dep_state(m, dep="dead")["state"] == "SERVICE_ERROR_STATE"
        # The cause is in opdata too (our eo: augment), with the event's sentence.
        cause, message, when = last_failure(m, dep="dead")
        assert cause == "host-unreachable" and when
        assert str(failed[0].status_message).endswith(message)

        # The run found CSP-3 silent, so the VIM supervisor checked it then and knows it is
        # down: another group placed on it is refused at edit time (reference §2).
        with pytest.raises(RPCError) as known_down:
            edit(m, on_dead.replace("<name>dead</name>", "<name>later</name>"))
        assert known_down.value.tag == "operation-failed"
        assert "VIM connector CSP-3 is not usable" in str(known_down.value.message)

        cluster.hosts["CSP-3"].start()  # back (probed every 0.5 s while down): usable again
        deadline = time.monotonic() + 15
        while _connector_status(m, "CSP-3") != "CONNECTION_SUCCESSFUL":
            assert time.monotonic() < deadline, "CSP-3 not seen back"
            time.sleep(0.3)
        cluster.hosts["CSP-3"].kill()
        cluster.hosts["CSP-3"].extra_args = ["--error-rate", "1"]
        cluster.hosts["CSP-3"].start()  # answers 503 (unnoticed until a run or a check)
        edit(m, on_dead.replace("<name>dead</name>", "<name>flaky</name>"))
        failed = events_until(m, "SERVICE_ALIVE", dep="flaky")
        assert [short(e) for e in failed] == ["SERVICE_ALIVE/FAILURE"]
        assert "CSP-3" in str(failed[0].status_message)
        assert dep_state(m, dep="flaky")["state"] == "SERVICE_ERROR_STATE"
        cause, message, _ = last_failure(m, dep="flaky")
        # every call answered 503, the observation too: the host is taken as unreachable
        assert cause == "host-unreachable" and "CSP-3" in message
        assert (cluster.services("CSP-1"), list(cluster.services("CSP-2"))) == ({}, [name])


def _connector_status(m: Any, vim_id: str) -> str | None:
    reply = m.get(filter=("xpath", "/esc_datamodel/opdata/vim_connectors"))
    data = etree.fromstring(reply.data_xml.encode())
    found = data.xpath(
        f"//e:vim_connector[e:id='{vim_id}']/e:status/text()", namespaces={"e": ESC_NS}
    )
    return str(found[0]) if found else None
