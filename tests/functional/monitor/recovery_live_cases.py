"""Live monitoring and recovery against emulated CSP hosts, INSIDE a private network namespace.

Not collected by a normal run (no ``test_`` prefix): test_recovery_live.py starts pytest on
this file under ``unshare --net``. Real parts only: ``esc-csp-sim`` hosts with their guest
network on ``lo`` (a running VM's address answers ping), the CSP connector over HTTP, ICMPPing
on a raw socket, the VIM's view, the monitoring loop, the recovery policy and its coordinator.
The rig is :mod:`esc_orch.testing.monitor_rig` (its one stand-in: the executor, the
reactor's part until the daemon wires it). Timings are the seed's, scaled down: polls every 0.3 s,
2 occurrences, recovery_wait_time 0.5 s, bootup_time 3 s.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.model.events import EventType, VmDetails, esc_event_xml
from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.reconcile.recovery import RecoveryAction, RecoveryNotice, recovery_event
from esc_orch.testing.monitor_rig import live_rig
from esc_orch.testing.netns import inside

if not inside():
    pytest.skip(
        "runs only inside the namespace made by test_recovery_live.py", allow_module_level=True
    )


@pytest.fixture(scope="session", autouse=True)
def sealed_namespace() -> Iterator[None]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        pytest.fail(f"not a sealed namespace: {problems}")
    yield


async def until(predicate: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def short(notices: Sequence[RecoveryNotice]) -> list[str]:
    return [f"{n.event.removeprefix('VM_RECOVERY_')}:{'ok' if n.ok else 'FAIL'}" for n in notices]


async def test_seed_scenario_2_the_host_dies_and_recovery_fails_visibly(tmp_path: Path) -> None:
    async with live_rig(tmp_path, RecoveryAction.REBOOT_ONLY) as (w, sink):
        await until(lambda: sink.alive == [True], 10)
        w.host.kill()
        await until(lambda: len(w.notices) >= 3, 20)
    name = w.identity.name
    assert short(w.notices) == ["INIT:ok", "REBOOT:FAIL", "COMPLETE:FAIL"]
    assert [n.message for n in w.notices] == [
        f"Recovery event for VM Generated ID [{name}] triggered.",
        f"VM [{name}] failed to be rebooted.",
        f"Recovery: Recovery completed with errors for VM: [{name}]",
    ]
    assert w.states == [VmLifecycleState.RECOVERING, VmLifecycleState.ERROR]
    assert w.notices[2].failure and "not alive within 3 s" in w.notices[2].failure
    # how fast: bench/monitor_detection.py (timing goals are benches, not tests)
    source = VmDetails(vmid=w.identity.vmid, vmname=name, generated_vmname=name,
                       vim_id="CSP-1", vim_project="CSP-1")  # fmt: skip
    xml = esc_event_xml(
        recovery_event(
            w.notices[2],
            depname="dep",
            tenant="demo",
            tenant_id="demo",
            depid="06c94f58-b753-425b-b97c-f7adb9140ead",
            vm_group="group",
            source=source,
        )
    ).decode()
    assert "<status_code>500</status_code>" in xml and "<vm_target>" in xml


async def test_a_vm_stopped_behind_our_back_is_started_and_recovered(tmp_path: Path) -> None:
    async with live_rig(tmp_path, RecoveryAction.REBOOT_ONLY) as (w, sink):
        await until(lambda: sink.alive == [True], 10)
        status, _, _ = await w.host.request(
            "PATCH", f"/api/running/services/service/{w.identity.name}",
            body={"service": {"power": "off"}},
        )  # fmt: skip
        assert status in (200, 204)
        await until(lambda: len(w.notices) >= 3, 15)
    assert short(w.notices) == ["INIT:ok", "REBOOT:ok", "COMPLETE:ok"]
    assert w.states == [VmLifecycleState.RECOVERING, VmLifecycleState.ALIVE]
    assert sink.alive == [True, True]


async def test_reboot_then_redeploy_redeploys_with_a_new_vmid(tmp_path: Path) -> None:
    async with live_rig(tmp_path, RecoveryAction.REBOOT_THEN_REDEPLOY) as (w, sink):
        await until(lambda: sink.alive == [True], 10)
        # the VM is deleted behind our back: a reboot cannot work, a redeploy does
        status, _, _ = await w.host.request(
            "DELETE", f"/api/running/services/service/{w.identity.name}"
        )
        assert status in (200, 204)
        await until(lambda: len(w.notices) >= 5, 20)
    assert short(w.notices) == [
        "INIT:ok", "REBOOT:FAIL", "UNDEPLOYED:ok", "DEPLOYED:ok", "COMPLETE:ok",
    ]  # fmt: skip
    target = w.notices[3].target
    assert target is not None and target.name == w.identity.name
    assert target.vmid != w.identity.vmid
    assert w.notices[4].target == target
    assert w.notices[0].event is EventType.VM_RECOVERY_INIT
