"""A fake CSP cluster and a reactor wired to it, for the reactor tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from esc_orch.model.config import Deployment
from esc_orch.reactor import (
    DeploymentTarget,
    MemoryEventSink,
    MemoryJournal,
    Reactor,
)
from esc_orch.vim import ConnectorConfig, VmSpec, VmState
from esc_orch.vim.fake import FakeClock, FakeCluster, FakeConnector, FakeHost
from esc_orch.vim.retry import RetryPolicy
from unit.reconcile.builders import TENANT, seed_connectors, seed_flavors, uuid_factory

# connector id -> (host, has cluster_name); as in unit.reconcile.builders.seed_connectors
LAYOUT = {
    "CSP-1": ("csp-1", True),
    "CSP-2": ("csp-2", True),
    "CSP-3": ("csp-3", True),
    "CSP-1-local": ("csp-1", False),
    "CSP-1-cluster": ("csp-1", True),
}


class GatedConnector(FakeConnector):
    """ensure_vm waits for ``gate`` (and sets ``entered``): a run held mid-step."""

    def __init__(self, *, gate: asyncio.Event, entered: asyncio.Event, **kw: Any) -> None:
        super().__init__(**kw)
        self.gate = gate
        self.entered = entered

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        self.entered.set()
        await self.gate.wait()
        return await super().ensure_vm(spec=spec)


@dataclass
class Lab:
    clock: FakeClock = field(default_factory=FakeClock)
    cluster: FakeCluster = field(default_factory=FakeCluster)
    hosts: dict[str, FakeHost] = field(default_factory=dict)
    connectors: dict[str, FakeConnector] = field(default_factory=dict)
    events: MemoryEventSink = field(default_factory=MemoryEventSink)
    journal: Any = field(default_factory=MemoryJournal)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        for cid, (host, clustered) in LAYOUT.items():
            fake_host = self.hosts.setdefault(host, FakeHost(name=host, cluster=self.cluster))
            props = {"cluster_name": self.cluster.name} if clustered else {}
            config = ConnectorConfig(id=cid, type="FAKE", properties=props)
            if self.gate is not None:
                self.connectors[cid] = GatedConnector(
                    config=config,
                    host=fake_host,
                    clock=self.clock,
                    gate=self.gate,
                    entered=self.entered,
                )
            else:
                self.connectors[cid] = FakeConnector(
                    config=config, host=fake_host, clock=self.clock
                )

    def reactor(self, *, uuid_start: int = 1000, **kw: Any) -> Reactor:
        return Reactor(
            connectors=self.connectors.__getitem__,
            journal=self.journal,
            events=self.events,
            sleep=self.clock.sleep,
            clock=kw.pop("clock", self.clock.utc),
            new_uuid=uuid_factory(uuid_start),
            retry=kw.pop("retry", RetryPolicy(attempts=4, base_delay=1.0, max_delay=8.0)),
            **kw,
        )

    def vms(self, host: str) -> dict[str, Any]:
        return self.hosts[host].vms

    def running(self) -> list[tuple[str, str]]:
        """(host, vm name) of every running VM in the lab."""
        return sorted(
            (h.name, n)
            for h in self.hosts.values()
            for n, vm in h.vms.items()
            if vm.power == "running"
        )


def target(
    dep: Deployment | None, *, name: str = "dep", tenant: str = TENANT, **kw: Any
) -> DeploymentTarget:
    return DeploymentTarget(
        tenant=tenant,
        name=name,
        deployment=dep,
        flavors=seed_flavors(),
        connectors=seed_connectors(),
        **kw,
    )
