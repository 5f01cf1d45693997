"""Live monitoring and recovery against emulated CSP hosts, INSIDE a private network namespace.

Not collected by a normal run (no ``test_`` prefix): test_recovery_live.py starts pytest on
this file under ``unshare --net``. Real parts only: ``esc-csp-sim`` hosts with their guest
network on ``lo`` (a running VM's address answers ping), the CSP connector over HTTP, ICMPPing
on a raw socket, the VIM's view, the monitoring loop, the recovery policy and its coordinator.
The one stand-in is the executor (the reactor's part, wired by the lead): it runs each
recovery action through the connector and, as the reactor will, marks the VM as booting again
when a reboot or redeploy is done. Timings are the seed's, scaled down: polls every 0.3 s,
2 occurrences, recovery_wait_time 0.5 s, bootup_time 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.model.events import VmDetails, esc_event_xml
from esc_orch.monitor.collectors.icmp import IcmpCollector
from esc_orch.monitor.collectors.protocol import CollectorContext
from esc_orch.monitor.collectors.vimview import VimViewSource
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.ports import SystemClock, VmStatus
from esc_orch.monitor.recovery_driver import RecoveryCoordinator, StepResult
from esc_orch.monitor.rule_runner import RuleOutcome
from esc_orch.monitor.rules import parse_action
from esc_orch.monitor.service import MonitorService
from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import KpiSpec, MetricCond, MetricKind, VmWatch
from esc_orch.reconcile.actions import CreateVm, DeleteVm, PowerOn, Reboot
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.recovery import (
    IssuedStep,
    RecoveryAction,
    RecoveryNotice,
    RecoverySubject,
    recovery_event,
)
from esc_orch.reconcile.vocab import EventType, VmLifecycleState
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.netns import inside
from esc_orch.vim.protocol import VimConnector
from esc_orch.vim.registry import create_connector
from esc_orch.vim.types import NicSpec, VmSpec

if not inside():
    pytest.skip(
        "runs only inside the namespace made by test_recovery_live.py", allow_module_level=True
    )

ADDR = "192.168.23.62"
ALLOWED = AllowedNetworks.parse(["192.168.23.0/24"])
SEED_RULES = ("ALWAYS log", "FALSE recover autohealing", "TRUE servicebooted.sh")


@pytest.fixture(scope="session", autouse=True)
def sealed_namespace() -> Iterator[None]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        pytest.fail(f"not a sealed namespace: {problems}")
    yield


@dataclass
class World:
    host: EmulatorHost
    connector: VimConnector
    identity: VmIdentity
    spec: VmSpec
    watch: VmWatch
    notices: list[RecoveryNotice] = field(default_factory=list)
    states: list[VmLifecycleState] = field(default_factory=list)

    def watches(self) -> Sequence[VmWatch]:
        return [self.watch]

    def subjects(self) -> Mapping[str, RecoverySubject]:
        return {self.identity.name: self.subject}

    subject: RecoverySubject = field(init=False)

    # the reactor's part, as the lead will wire it
    async def execute(self, step: IssuedStep) -> StepResult:
        a = step.action
        try:
            async with asyncio.timeout(5):
                match a:
                    case Reboot():
                        await self.connector.reboot(name=a.vm.name)
                    case PowerOn():
                        await self.connector.power_on(name=a.vm.name)
                    case DeleteVm():
                        await self.connector.delete_vm(name=a.vm.name, keep_disk=a.keep_disk)
                    case CreateVm():
                        await self.connector.ensure_vm(spec=a.spec)
        except Exception as exc:
            return StepResult(ok=False, failure=f"{type(exc).__name__}: {exc}")
        if isinstance(a, Reboot | PowerOn | CreateVm):
            self.watch = replace(self.watch, since=time.time())  # booting again
        return StepResult(ok=True)

    async def notice(self, notice: RecoveryNotice) -> None:
        self.notices.append(notice)

    async def vm_state(self, vm_name: str, state: VmLifecycleState) -> None:
        self.states.append(state)


class Sink:
    def __init__(self, coordinator: RecoveryCoordinator) -> None:
        self.coordinator = coordinator
        self.alive: list[bool] = []

    async def kpi_changed(self, status: VmStatus) -> None:
        return None

    async def vm_alive(self, vm_name: str, *, first: bool) -> None:
        self.alive.append(first)
        await self.coordinator.sink_alive(vm_name)

    async def recovery_requested(self, request: RecoveryRequest) -> None:
        await self.coordinator.sink_request(request)

    async def rule_ran(self, outcome: RuleOutcome) -> None:
        return None


@contextlib.asynccontextmanager
async def world(tmp_path: Path, action: RecoveryAction) -> AsyncIterator[tuple[World, Sink]]:
    host = EmulatorHost(name="CSP-1", root=tmp_path, extra_args=["--guest-net", "netns"])
    host.start()
    connector = create_connector(host.config(timeout="1", retries="1"))
    ident = VmIdentity(deployment="dep", group="group", index=0, uuid=str(uuid.uuid4()),
                       vmid=str(uuid.uuid4()))  # fmt: skip
    spec = VmSpec(name=ident.name, vcpus=1, memory_mb=256, disk_mb=16, image="csr.qcow2",
                  interfaces=(NicSpec(nicid=0, network="Eth0-2", ip_address=ADDR),))  # fmt: skip
    await connector.ensure_vm(spec=spec)
    kpi = KpiSpec(
        event_name="VM_ALIVE", collector_type="ICMPPing", kind=MetricKind.THRESHOLD,
        metric_value=50, metric_cond=MetricCond.GT, occurrences_true=2, occurrences_false=2,
        poll_seconds=0.3, nicid=0, address=ADDR, properties={"timeout": "0.2"},
    )  # fmt: skip
    watch = VmWatch(
        vm_name=ident.name, tenant="demo", deployment="dep", group="group", connector_id="CSP-1",
        bootup_time=3, recovery_wait_time=0.5, since=time.time(), kpis=(kpi,),
        rules={"VM_ALIVE": tuple(parse_action(r) for r in SEED_RULES)},
    )  # fmt: skip
    w = World(host=host, connector=connector, identity=ident, spec=spec, watch=watch)
    w.subject = RecoverySubject(
        vm=ident, connector_id="CSP-1", vim_project="CSP-1", spec=spec, action=action,
        max_retries=1, bootup_time=3,
    )  # fmt: skip
    clock = SystemClock()
    coordinator = RecoveryCoordinator(
        subjects=w, executor=w, reporter=w, clock=clock, new_uuid=lambda: str(uuid.uuid4())
    )
    sink = Sink(coordinator)
    service = MonitorService(
        watches=w, sink=sink, clock=clock, max_sleep=0.1, vim_interval=0.3,
        collectors={"ICMPPing": IcmpCollector(context=CollectorContext(allowed=ALLOWED))},
        vim=VimViewSource(observers={"CSP-1": connector}, check_timeout=1),
    )  # fmt: skip

    async def ticker() -> None:
        while True:
            await coordinator.tick()
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(service.run()), asyncio.create_task(ticker())]
    try:
        yield w, sink
    finally:
        await service.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connector.close()
        host.close()


async def until(predicate: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def short(notices: Sequence[RecoveryNotice]) -> list[str]:
    return [f"{n.event.removeprefix('VM_RECOVERY_')}:{'ok' if n.ok else 'FAIL'}" for n in notices]


async def test_seed_scenario_2_the_host_dies_and_recovery_fails_visibly(tmp_path: Path) -> None:
    async with world(tmp_path, RecoveryAction.REBOOT_ONLY) as (w, sink):
        await until(lambda: sink.alive == [True], 10)
        killed = time.monotonic()
        w.host.kill()
        await until(lambda: len(w.notices) >= 1, 10)
        detected = time.monotonic() - killed
        await until(lambda: len(w.notices) >= 3, 15)
    name = w.identity.name
    assert short(w.notices) == ["INIT:ok", "REBOOT:FAIL", "COMPLETE:FAIL"]
    assert [n.message for n in w.notices] == [
        f"Recovery event for VM Generated ID [{name}] triggered.",
        f"VM [{name}] failed to be rebooted.",
        f"Recovery: Recovery completed with errors for VM: [{name}]",
    ]
    assert w.states == [VmLifecycleState.RECOVERING, VmLifecycleState.ERROR]
    assert w.notices[2].failure and "not alive within 3 s" in w.notices[2].failure
    # the VIM check (every 0.3 s) notices the dead host; then recovery_wait_time (0.5 s)
    assert detected < 0.3 + 0.5 + 1.0 + 0.5, detected
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
    async with world(tmp_path, RecoveryAction.REBOOT_ONLY) as (w, sink):
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
    async with world(tmp_path, RecoveryAction.REBOOT_THEN_REDEPLOY) as (w, sink):
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
