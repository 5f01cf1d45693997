"""Moves on emulated CSP hosts: scenario 1 (1 VM, a group of 10) and scenario 2 (fence, confirm).

The daemon's lifecycle parts run in this process as ``esc-orchd serve`` wires them
(SqlDatastore on SQLite, LifecycleService with its proof sources); the hosts are real
``esc-csp-sim`` processes on 127.0.0.1. NETCONF/SSH is not included.

* Scenario 1: the seed deployment (1 VM, then a group of 10) on CSP-1, then the locator edit to
  CSP-2: wall time from the edit to SERVICE_UPDATED; the emulator's share is the wall time
  during which at least one VIM call was in flight (union of the calls' intervals, as in
  bench/lifecycle_deploy.py); the orchestrator's share is the rest. ``share_vs_bare_pct``
  compares with the same VIM calls of the move made by bare connectors to fresh hosts (put in
  the same state by replaying the deployment's calls first): ``bare_emulator_s`` is the
  emulator's own time for the move, the rest is the orchestrator's.
* Scenario 2, fence agent: CSP-1 partitioned (SIGSTOP, VM running, disk locked), its connector
  naming its power controller (``esc-csp-sim cluster``) in ``eo:fence_agent``: time from the
  locator edit to SERVICE_UPDATED (observing the silent host, fencing it, starting on CSP-2).
* Scenario 2, operator confirmation: a VM on CSP-1's local disk, CSP-1 killed; the locator edit,
  then at once ``confirm-host-down CSP-1`` (what eo:confirm-host-down does): time from the edit
  to SERVICE_UPDATED.

    .venv/bin/python bench/move_scenarios.py [--group 10] [--only-scenario-1]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from lifecycle_deploy import (  # type: ignore[import-not-found]
    Timed,
    Timeline,
    _config,
    bare_emulator,
    tag_reactor_runs,
)

from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.model.events import EventType
from esc_orch.model.vim import ConnectorConfig
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.testing.emulator import EmulatorCluster, EmulatorHost
from esc_orch.vim import create_connector

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ESC_NS = "http://www.cisco.com/esc/esc"
SETTINGS = LifecycleSettings(
    retry_base_delay=0.2, retry_max_delay=1.0, observe_timeout=2.0, proof_timeout=60.0
)
FAST = (("retries", "2"), ("backoff", "0.1"), ("timeout", "5"))


def deployment(example: str, *, vim: str, n: int = 1) -> str:
    text = (EXAMPLES / example).read_text().split("-->", 1)[1]
    text = text.replace(">CSP-1<", f">{vim}<")
    text = text.replace("<vcpus>2</vcpus>", "<vcpus>1</vcpus>")
    text = text.replace("<memory_mb>4096</memory_mb>", "<memory_mb>256</memory_mb>")
    text = text.replace("<min_active>1</min_active>", f"<min_active>{n}</min_active>")
    text = text.replace("<max_active>1</max_active>", f"<max_active>{n}</max_active>")
    ips = "".join(f"<ip_address>192.168.23.{61 + i}</ip_address>" for i in range(n))
    return text.replace(
        "<ip_address>192.168.23.61</ip_address>\n              </static_ip_address_pool>",
        f"{ips}</static_ip_address_pool>",
    )


def connectors_xml(hosts: dict[str, Any], *, fence: dict[str, str] | None = None) -> str:
    """``hosts``: name -> (url, user, password); ``fence``: name -> its eo:fence_agent XML."""
    entries = []
    for name, (url, user, password) in sorted(hosts.items()):
        props = [("url", url), ("cluster_name", "Cluster_Test"), *FAST]
        users = [(user, password)]
        agent = (fence or {}).get(name, "")
        p = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props)
        u = "".join(
            f"<user><id>{i}</id><credentials><properties><property><name>password</name>"
            f"<value>{pw}</value></property></properties></credentials></user>"
            for i, pw in users
        )
        entries.append(
            f"<vim_connector><id>{name}</id><type>CSP</type><properties>{p}</properties>"
            f"<users>{u}</users>{agent}</vim_connector>"
        )
    return (
        f'<esc_system_config xmlns="{ESC_NS}"><vim_connectors>{"".join(entries)}'
        "</vim_connectors></esc_system_config>"
    )


class Lifecycle:
    """A datastore and a started LifecycleService whose connectors are timed."""

    def __init__(self, root: Path, connectors: str) -> None:
        self.timeline = Timeline()
        self.store = SqlDatastore.open(data_dir=root)
        self.store.edit_config(target=Datastore.RUNNING, config=_config(connectors))

        def factory(config: ConnectorConfig) -> Any:
            self.timeline.configs[config.id] = config
            return Timed(create_connector(config), self.timeline, config.id)

        self.service = LifecycleService(datastore=self.store, settings=SETTINGS, factory=factory)

    async def edit(self, xml: str) -> None:
        await asyncio.to_thread(
            self.store.edit_config, target=Datastore.RUNNING, config=_config(xml)
        )
        await asyncio.sleep(0)

    async def settle(self) -> None:
        await asyncio.sleep(0.05)
        await asyncio.wait_for(self.service.reactor.drain(), timeout=120)

    def last_service_event(self) -> str:
        kinds = [e.event_type for e in self.store.events.read(limit=100_000)]
        return next(k for k in reversed(kinds) if k.startswith("SERVICE_"))

    async def close(self) -> None:
        await self.service.stop()
        self.store.close()


async def scenario1(root: Path, *, n: int) -> dict[str, float]:
    tag_reactor_runs(asyncio.get_running_loop())
    hosts = [EmulatorHost(name=f"CSP-{i}", root=root / "cluster") for i in (1, 2)]
    for host in hosts:
        host.start()
    life = Lifecycle(
        root / "orchd",
        connectors_xml({h.name: (h.url, h.user, h.password) for h in hosts}),
    )
    try:
        await life.service.start()
        await life.edit(deployment("deploy_csp_1.xml", vim="CSP-1", n=n))
        await life.settle()
        deployed = list(life.timeline.chains.values())
        life.timeline.spans.clear()
        life.timeline.chains.clear()
        started = time.monotonic()
        await life.edit(deployment("deploy_csp_1.xml", vim="CSP-2", n=n))
        await life.settle()
        total = time.monotonic() - started
        busy = life.timeline.busy()
        assert life.last_service_event() == EventType.SERVICE_UPDATED, life.last_service_event()
        calls = sum(len(c) for c in life.timeline.chains.values())
        bare, _cpu = await bare_emulator(root, life.timeline, parallel=1, extra=[], before=deployed)
        return {"vms": n, "total_s": total, "vim_calls": calls, "emulator_s": busy,
                "orchestrator_s": total - busy,
                "orchestrator_share_pct": 100 * (total - busy) / total,
                "bare_emulator_s": bare, "share_vs_bare_pct": 100 * (total - bare) / total,
                }  # fmt: skip
    finally:
        await life.close()
        for host in hosts:
            host.close()


async def scenario2_fence(root: Path) -> dict[str, float]:
    with EmulatorCluster(root / "cluster", hosts=2) as cluster:
        life = Lifecycle(
            root / "orchd",
            connectors_xml(
                {n: (h.url, h.user, h.password) for n, h in cluster.hosts.items()},
                fence={"CSP-1": cluster.fence_agent_xml("CSP-1")},
            ),
        )
        try:
            await life.service.start()
            await life.edit(deployment("deploy_csp_1.xml", vim="CSP-1"))
            await life.settle()
            cluster.pause("CSP-1")
            started = time.monotonic()
            await life.edit(deployment("deploy_csp_1.xml", vim="CSP-2"))
            await life.settle()
            total = time.monotonic() - started
            assert life.last_service_event() == EventType.SERVICE_UPDATED
            assert cluster.pid("CSP-1") is None
            return {"total_s": total}
        finally:
            await life.close()


async def scenario2_confirm(root: Path) -> dict[str, float]:
    hosts = [EmulatorHost(name=f"CSP-{i}", root=root / "cluster") for i in (1, 2)]
    for host in hosts:
        host.start()
    life = Lifecycle(
        root / "orchd",
        connectors_xml({h.name: (h.url, h.user, h.password) for h in hosts}),
    )
    try:
        await life.service.start()
        await life.edit(deployment("deploy_csp_1_local.xml", vim="CSP-1"))
        await life.settle()
        hosts[0].kill()
        started = time.monotonic()
        await life.edit(deployment("deploy_csp_1_local.xml", vim="CSP-2"))
        await life.service.proof_sources.confirm("CSP-1", by="bench")
        life.service.rearm("CSP-1")
        confirmed = time.monotonic() - started
        await life.settle()
        total = time.monotonic() - started
        assert life.last_service_event() == EventType.SERVICE_UPDATED, life.last_service_event()
        return {"total_s": total, "confirmed_after_s": confirmed}
    finally:
        await life.close()
        for host in hosts:
            host.close()


def show(title: str, figures: dict[str, float]) -> None:
    print(title)
    for name, value in figures.items():
        print(f"  {name:28} {value:10.3f}" if isinstance(value, float) else f"  {name:28} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", type=int, default=10)
    parser.add_argument("--only-scenario-1", action="store_true", help="skip scenario 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="esc-bench-") as tmp:
        root = Path(tmp)
        show("scenario 1, 1 VM", asyncio.run(scenario1(root / "s1a", n=1)))
        show(
            f"scenario 1, group of {args.group}", asyncio.run(scenario1(root / "s1b", n=args.group))
        )
        if args.only_scenario_1:
            return
        show("scenario 2, fence agent", asyncio.run(scenario2_fence(root / "s2f")))
        show("scenario 2, operator confirmation", asyncio.run(scenario2_confirm(root / "s2c")))


if __name__ == "__main__":
    main()
