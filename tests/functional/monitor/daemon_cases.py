"""Monitoring and recovery through the REAL daemon, INSIDE a private network namespace.

Not collected by a normal run (no ``test_`` prefix): test_monitor_daemon_live.py runs pytest
on this file under ``unshare --net``. Three ``esc-csp-sim`` hosts with their guest network on
the namespace's ``lo`` (a running VM's 192.168.23.x answers ping), ``esc-orchd serve`` with
``[monitor]`` allowing 192.168.23.0/24, ncclient over SSH. The seed's payload with its timings
scaled down (polls 1 s, 2 occurrences, recovery_wait_time 1 s, bootup_time 6 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from esc_orch import failpoints
from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.model.events import EscEvent, parse_esc_event
from esc_orch.model.schema import ESC_NS
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.netns import inside
from functional.lifecycle.support import (
    HOSTS,
    NS,
    Cluster,
    connect,
    dep_state,
    edit,
    events_until,
    opdata,
    short,
)
from payloads import EXAMPLES

if not inside():
    pytest.skip(
        "runs only inside the namespace made by test_monitor_daemon_live.py",
        allow_module_level=True,
    )

EO = "urn:esc-orch:yang:esc-orch"
DAEMON_TOML = """
[vim]
check_interval = 30
check_timeout = 2
[lifecycle]
resync_interval = 600
retry_attempts = 2
retry_base_delay = 0.2
retry_max_delay = 0.5
[monitor]
allowed_networks = ["192.168.23.0/24"]
vim_interval = 1
script_timeout = 5
scripts_dir = "{scripts}"
"""
SCRIPT = '#!/bin/sh\necho "$ESC_VM_NAME $ESC_EDGE" >> "{out}"\n'


@pytest.fixture(scope="session", autouse=True)
def sealed_namespace() -> Iterator[None]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        pytest.fail(f"not a sealed namespace: {problems}")
    yield


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.hosts = {
        name: EmulatorHost(
            name=name, root=tmp_path / "cluster", extra_args=["--guest-net", "netns"]
        )
        for name in HOSTS
    }
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "servicebooted.sh"
    script.write_text(SCRIPT.format(out=tmp_path / "booted.txt"))
    script.chmod(0o755)
    c.config.write_text(DAEMON_TOML.format(scripts=scripts))
    try:
        c.start_hosts()
        yield c
    finally:
        c.close()


def fast(name: str, *, address: str = "192.168.23.61", action: str = "REBOOT_ONLY") -> str:
    """The seed payload ``name`` with its timings scaled down."""
    text = (EXAMPLES / name).read_text().split("-->", 1)[1]
    for old, new in (
        ("<poll_frequency>15</poll_frequency>", "<poll_frequency>1</poll_frequency>"),
        ("<metric_occurrences_true>3<", "<metric_occurrences_true>2<"),
        ("<metric_occurrences_false>3<", "<metric_occurrences_false>2<"),
        ("<recovery_wait_time>60<", "<recovery_wait_time>1<"),
        ("<bootup_time>600<", "<bootup_time>6<"),
        ("REBOOT_ONLY", action),
        ("192.168.23.61", address),
    ):
        text = text.replace(old, new)
    return f"<config>{text}</config>"


def vm_opdata(m: Any, dep: str = "dep") -> etree._Element:
    found = opdata(m).xpath(
        f"//e:deployments[e:deployment_name='{dep}']/e:vm_group/e:vm_instance", namespaces=NS
    )
    assert found, f"no vm_instance of {dep}"
    return found[0]


def rpc(m: Any, name: str, **leaves: str) -> None:
    op = etree.Element(f"{{{ESC_NS}}}{name}", nsmap={None: ESC_NS})  # type: ignore[dict-item]
    for leaf, value in leaves.items():
        etree.SubElement(op, f"{{{ESC_NS}}}{leaf}").text = value
    m.dispatch(op)


def drain(m: Any, *, seconds: float) -> list[EscEvent]:
    """The deployment events that arrive within ``seconds``."""
    out: list[EscEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        notification = m.take_notification(block=True, timeout=0.5)
        if notification is None:
            continue
        found = etree.fromstring(notification.notification_xml.encode()).find(
            f"{{{ESC_NS}}}escEvent"
        )
        if found is not None and (event := parse_esc_event(found)).depname is not None:
            out.append(event)
    return out


def power_off(cluster: Cluster, host: str, vm: str) -> None:
    async def patch() -> int:
        status, _, _ = await cluster.hosts[host].request(
            "PATCH", f"/api/running/services/service/{vm}", body={"service": {"power": "off"}}
        )
        return status

    assert asyncio.run(patch()) in (200, 204)


def test_seed_scenario_2_host_killed_then_a_vm_stopped_behind_our_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, fast("deploy_csp_1.xml"))
        deployed = events_until(m, "SERVICE_ALIVE", timeout=30)
        # VM_ALIVE now comes from the KPI (two answered pings), then SERVICE_ALIVE
        assert [short(e) for e in deployed] == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
        vm = deployed[0].vm_source
        assert vm is not None and vm.vmname is not None
        name = vm.vmname
        mon = vm_opdata(m).find(f"{{{EO}}}monitoring")
        assert mon is not None and mon.findtext(f"{{{EO}}}enabled") == "true"
        kpi = mon.find(f"{{{EO}}}kpi")
        assert kpi is not None and kpi.findtext(f"{{{EO}}}last_value") == "100"
        assert kpi.findtext(f"{{{EO}}}condition") == "true"
        # the rule "TRUE servicebooted.sh" ran the operator's script
        deadline = time.monotonic() + 10
        booted = tmp_path / "booted.txt"
        while not booted.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert booted.read_text().split() == [name, "TRUE"]

        # Seed scenario 2: CSP-1 dies under the VM
        cluster.hosts["CSP-1"].kill()
        recovery = events_until(m, "VM_RECOVERY_COMPLETE", timeout=40)
        assert [short(e) for e in recovery] == [
            "VM_RECOVERY_INIT",
            "VM_RECOVERY_REBOOT/FAILURE",
            "VM_RECOVERY_COMPLETE/FAILURE",
        ]
        init, reboot, complete = recovery
        assert init.status_message == f"Recovery event for VM Generated ID [{name}] triggered."
        assert reboot.status_message == f"VM [{name}] failed to be rebooted."
        assert complete.status_message == (
            f"Recovery: Recovery completed with errors for VM: [{name}]"
        )
        assert (init.status_code, reboot.status_code, complete.status_code) == (200, 500, 500)
        for e in recovery:
            assert (e.tenant, e.depname, e.depid, e.vm_group) == (
                "name1", "dep", deployed[0].depid, "Group1",
            )  # fmt: skip
            assert e.vm_source is not None and e.vm_source.vmname == name
            assert e.vm_source.vmid == vm.vmid and e.vm_source.vim_id == "CSP-1"
        assert init.vm_target is None and reboot.vm_target is None
        assert complete.vm_target is not None and complete.vm_target.vmname == name
        state = dep_state(m)
        assert state["vms"] == {name: "VM_ERROR_STATE"}
        failure = vm_opdata(m).find(f"{{{EO}}}last_failure")
        assert failure is not None
        assert failure.findtext(f"{{{EO}}}cause") == "recovery-failed"
        message = failure.findtext(f"{{{EO}}}message") or ""
        assert f"recovery of {name} on VIM connector CSP-1 failed" in message
        assert "not alive within 6 s" in message

        # A second deployment on CSP-2; its VM is stopped behind our back: started, recovered
        edit(m, fast("deploy_csp_2.xml", address="192.168.23.62").replace(
            "<name>dep</name>", "<name>dep2</name>"))  # fmt: skip
        second = events_until(m, "SERVICE_ALIVE", dep="dep2", timeout=30)
        vm2 = second[0].vm_source
        assert vm2 is not None and vm2.vmname is not None
        power_off(cluster, "CSP-2", vm2.vmname)
        back = events_until(m, "VM_RECOVERY_COMPLETE", dep="dep2", timeout=30)
        assert [short(e) for e in back] == [
            "VM_RECOVERY_INIT",
            "VM_RECOVERY_REBOOT",
            "VM_RECOVERY_COMPLETE",
        ]
        assert back[1].status_message == f"VM [{vm2.vmname}] rebooted."
        assert back[2].status_message == f"Recovery: Successfully recovered VM [{vm2.vmname}]."
        assert cluster.services("CSP-2")[vm2.vmname] == "on"
        assert dep_state(m, dep="dep2")["vms"] == {vm2.vmname: "VM_ALIVE_STATE"}

        # recoveryVmAction DO: a recovery now, by the group's policy (a reboot)
        rpc(m, "recoveryVmAction", actionType="DO", vmName=vm2.vmname)
        manual = events_until(m, "VM_RECOVERY_COMPLETE", dep="dep2", timeout=30)
        assert [short(e) for e in manual] == [
            "VM_RECOVERY_INIT",
            "VM_RECOVERY_REBOOT",
            "VM_RECOVERY_COMPLETE",
        ]

        # DISABLE_MONITOR really stops watching: a VM stopped now is left alone ...
        rpc(m, "vmAction", actionType="DISABLE_MONITOR", vmName=vm2.vmname, force="false")
        assert [short(e) for e in events_until(m, "VM_MONITOR_UNSET", dep="dep2")] == [
            "VM_MONITOR_UNSET"
        ]
        mon = vm_opdata(m, "dep2").find(f"{{{EO}}}monitoring")
        assert mon is not None and mon.findtext(f"{{{EO}}}enabled") == "false"
        power_off(cluster, "CSP-2", vm2.vmname)
        quiet = drain(m, seconds=4)
        assert [short(e) for e in quiet] == [], "recovery while monitoring was off"
        # ... and ENABLE_MONITOR starts it again: the stopped VM is recovered
        rpc(m, "vmAction", actionType="ENABLE_MONITOR", vmName=vm2.vmname, force="false")
        again = events_until(m, "VM_RECOVERY_COMPLETE", dep="dep2", timeout=30)
        assert [short(e) for e in again] == [
            "VM_MONITOR_SET",
            "VM_RECOVERY_INIT",
            "VM_RECOVERY_REBOOT",
            "VM_RECOVERY_COMPLETE",
        ]
        assert cluster.services("CSP-2")[vm2.vmname] == "on"


def test_bootup_expiry_then_reboot_then_redeploy_with_a_new_vmid(cluster: Cluster) -> None:
    """Pings to the VM are dropped from the start: it never turns alive within bootup_time.

    A blackhole rule before the local table drops them (the VIM still says running), so the
    recovery (cause bootup-expired) reboots first, which does not help, then undeploys and
    redeploys with a new vmid; the rule removed, the VM turns alive: VM_ALIVE, SERVICE_ALIVE
    (owed by the deploy run), VM_RECOVERY_COMPLETE.
    """
    block = ("pref", "10", "to", "192.168.23.61/32", "blackhole")
    for rule in (
        ("add", "pref", "100", "lookup", "local"),
        ("del", "pref", "0", "lookup", "local"),
        ("add", *block),
    ):
        subprocess.run(["ip", "rule", *rule], check=True, timeout=10)
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, fast("deploy_csp_2.xml", action="REBOOT_THEN_REDEPLOY"))
        events = events_until(m, "VM_RECOVERY_DEPLOYED", timeout=60)
        subprocess.run(["ip", "rule", "del", *block], check=True, timeout=10)
        kinds = [short(e) for e in events]
        assert kinds == [
            "VM_DEPLOYED",
            "VM_RECOVERY_INIT",
            "VM_RECOVERY_REBOOT",
            "VM_RECOVERY_UNDEPLOYED",
            "VM_RECOVERY_DEPLOYED",
        ], kinds
        vm = events[0].vm_source
        assert vm is not None and vm.vmname is not None
        deployed_again = events[-1]
        assert deployed_again.vm_target is not None
        assert deployed_again.vm_target.vmid != vm.vmid
        assert deployed_again.status_message == f"VM [{vm.vmname}] redeployed."
        done = events_until(m, "VM_RECOVERY_COMPLETE", timeout=30)
        assert [short(e) for e in done] == ["VM_ALIVE", "SERVICE_ALIVE", "VM_RECOVERY_COMPLETE"]
        assert done[-1].vm_target is not None
        assert done[-1].vm_target.vmid == deployed_again.vm_target.vmid
        instance = vm_opdata(m)
        assert instance.findtext(f"{{{NS['e']}}}vm_id") == deployed_again.vm_target.vmid
        assert dep_state(m)["vms"] == {vm.vmname: "VM_ALIVE_STATE"}


def test_kill_minus_nine_during_a_recovery_step_resumes_and_runs_the_cut_reboot_again(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The daemon dies right after journaling the recovery's reboot (intent 2; 1 is the create).

    The book with VM_RECOVERY_INIT was written before the step was handed over; after the
    restart the cut intent is abandoned and the recovery runs the reboot again, once (a reboot
    run twice does what it does once; docs/monitoring.md): the host is dead, so its
    VM_RECOVERY_REBOOT FAILURE names that, then VM_RECOVERY_COMPLETE FAILURE once the boot
    time ran out — once each, the events the recovery has without the crash.
    """
    cluster.start_daemon(env={failpoints.ENV: "lifecycle.after-intent=kill@2"})
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, fast("deploy_csp_1.xml"))
        events_until(m, "SERVICE_ALIVE", timeout=30)
        cluster.hosts["CSP-1"].kill()
        with contextlib.suppress(Exception):
            events_until(m, "VM_RECOVERY_INIT", timeout=20)
    assert cluster.wait_daemon_death() == -9, "the failpoint did not fire"
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        after = events_until(m, "VM_RECOVERY_COMPLETE", timeout=30)
    recovery = [short(e) for e in after if str(e.event.type).startswith("VM_RECOVERY")]
    assert recovery == ["VM_RECOVERY_REBOOT/FAILURE", "VM_RECOVERY_COMPLETE/FAILURE"], [
        short(e) for e in after
    ]
    db = sqlite3.connect(tmp_path / "orchd" / "esc-orch.sqlite")
    try:
        rows = db.execute(
            "SELECT status FROM lifecycle_journal WHERE action LIKE '%\"Reboot\"%'"
        ).fetchall()
        logged = [r[0] for r in db.execute(
            "SELECT event_type FROM event_log WHERE event_type LIKE 'VM_RECOVERY%' ORDER BY id"
        )]  # fmt: skip
    finally:
        db.close()
    # the cut intent closed as abandoned, never replayed as such; the reboot run again failed
    assert sorted(r[0] for r in rows) == ["abandoned", "failed"]
    assert logged == ["VM_RECOVERY_INIT", "VM_RECOVERY_REBOOT", "VM_RECOVERY_COMPLETE"]


def test_env_marker() -> None:
    assert os.environ.get("ESC_ORCH_TEST_NETNS") == "1"
