"""A live monitoring rig: one emulated CSP host, one VM, the monitor and recovery running.

For tests and benches that run INSIDE a private network namespace (the host's guest network
puts the VM's address on ``lo``). Real parts: ``esc-csp-sim`` with ``--guest-net netns``, the
CSP connector over HTTP, ICMPPing, the VIM's view, :class:`MonitorService`, the recovery
policy and :class:`RecoveryCoordinator`. The one stand-in is the executor, the reactor's part
until the daemon wires it: it runs each recovery action through the connector and marks the
VM as booting again after a reboot, start or redeploy, as the reactor will.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from esc_orch.model.actions import CreateVm, DeleteVm, PowerOn, Reboot
from esc_orch.model.lifecycle import VmLifecycleState
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
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.recovery import IssuedStep, RecoveryAction, RecoveryNotice, RecoverySubject
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.vim.protocol import Connector as VimConnector
from esc_orch.vim.registry import create_connector
from esc_orch.vim.types import NicSpec, VmSpec

ADDR = "192.168.23.62"  # the seed's VM address: only ever on a private namespace's lo
ALLOWED = AllowedNetworks.parse(["192.168.23.0/24"])
SEED_RULES = ("ALWAYS log", "FALSE recover autohealing", "TRUE servicebooted.sh")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The payload's timings, scaled down (seconds)."""

    poll: float = 0.3
    occurrences: int = 2
    wait: float = 0.5  # recovery_wait_time
    bootup: float = 3.0
    vim_interval: float = 0.3


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
async def live_rig(
    root: Path, action: RecoveryAction, timing: Timing | None = None, *, vim_view: bool = True
) -> AsyncIterator[tuple[World, Sink]]:
    """One emulated host with one monitored VM, the service and the coordinator running."""
    t = timing or Timing()
    host = EmulatorHost(name="CSP-1", root=root, extra_args=["--guest-net", "netns"])
    host.start()
    connector = create_connector(host.config(timeout="1", retries="1"))
    ident = VmIdentity(deployment="dep", group="group", index=0, uuid=str(uuid.uuid4()),
                       vmid=str(uuid.uuid4()))  # fmt: skip
    spec = VmSpec(name=ident.name, vcpus=1, memory_mb=256, disk_mb=16, image="csr.qcow2",
                  interfaces=(NicSpec(nicid=0, network="Eth0-2", ip_address=ADDR),))  # fmt: skip
    await connector.ensure_vm(spec=spec)
    kpi = KpiSpec(
        event_name="VM_ALIVE", collector_type="ICMPPing", kind=MetricKind.THRESHOLD,
        metric_value=50, metric_cond=MetricCond.GT, occurrences_true=t.occurrences,
        occurrences_false=t.occurrences, poll_seconds=t.poll, nicid=0, address=ADDR,
        properties={"timeout": str(min(0.2, t.poll / 2))},
    )  # fmt: skip
    watch = VmWatch(
        vm_name=ident.name, tenant="demo", deployment="dep", group="group", connector_id="CSP-1",
        bootup_time=t.bootup, recovery_wait_time=t.wait, since=time.time(), kpis=(kpi,),
        rules={"VM_ALIVE": tuple(parse_action(r) for r in SEED_RULES)},
    )  # fmt: skip
    w = World(host=host, connector=connector, identity=ident, spec=spec, watch=watch)
    w.subject = RecoverySubject(
        vm=ident, connector_id="CSP-1", vim_project="CSP-1", spec=spec, action=action,
        max_retries=1, bootup_time=t.bootup,
    )  # fmt: skip
    clock = SystemClock()
    coordinator = RecoveryCoordinator(
        subjects=w, executor=w, reporter=w, clock=clock, new_uuid=lambda: str(uuid.uuid4())
    )
    sink = Sink(coordinator)
    service = MonitorService(
        watches=w, sink=sink, clock=clock, max_sleep=0.1, vim_interval=t.vim_interval,
        collectors={"ICMPPing": IcmpCollector(context=CollectorContext(allowed=ALLOWED))},
        vim=VimViewSource(observers={"CSP-1": connector}, check_timeout=1) if vim_view else None,
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
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connector.close()
        host.close()
