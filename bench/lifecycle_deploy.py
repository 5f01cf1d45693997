"""Deploy 100 single-VM deployments on three emulated CSP hosts: where does the time go?

The daemon's own lifecycle parts run in this process exactly as ``esc-orchd serve`` wires them
(SqlDatastore on SQLite, LifecycleService: commit listener → reactor → durable journal, memory
and event log); the three ``esc-csp-sim host`` processes are real, on 127.0.0.1. Each
deployment is one edit-config of running (the seed's vm_group with a small flavor, placed
round-robin on CSP-1..3).

Figures: total wall time from the first edit to the last SERVICE_ALIVE; the emulator's share,
measured on the connector side as the wall time during which at least one VIM call (describe,
list, create...) was in flight (the union of the calls' intervals, so parallel calls are not
counted twice); the orchestrator's own share = total - emulator share (planning, journal and
event transactions, the datastore edits, scheduling). NETCONF/SSH is not included.

    .venv/bin/python bench/lifecycle_deploy.py [--deployments 100] [--max-parallel 4]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.model.lifecycle import DeploymentState
from esc_orch.model.schema import NC_NS
from esc_orch.model.vim import ConnectorConfig
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.vim import create_connector

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Timeline:
    """Intervals of VIM calls in flight (monotonic seconds)."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.calls = 0

    def busy(self) -> float:
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total


class Timed:
    """A connector whose every coroutine method is timed into ``timeline``."""

    def __init__(self, inner: Any, timeline: Timeline) -> None:
        self._inner, self._timeline = inner, timeline

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return await attr(*args, **kwargs)
            finally:
                self._timeline.spans.append((started, time.monotonic()))
                self._timeline.calls += 1

        return timed


def _config(xml: str) -> etree._Element:
    config = etree.Element(f"{{{NC_NS}}}config")
    config.append(parse_xml(xml.encode()))
    return config


def _deployment(index: int, hosts: int) -> str:
    text = (EXAMPLES / "deploy_csp_1.xml").read_text().split("-->", 1)[1]
    text = text.replace("<name>dep</name>", f"<name>bench{index:03d}</name>")
    text = text.replace("CSP-1", f"CSP-{index % hosts + 1}")
    text = text.replace("<vcpus>2</vcpus>", "<vcpus>1</vcpus>")
    text = text.replace("<memory_mb>4096</memory_mb>", "<memory_mb>256</memory_mb>")
    return text.replace("<root_disk_mb>10240</root_disk_mb>", "<root_disk_mb>1024</root_disk_mb>")


def _connectors(hosts: list[EmulatorHost]) -> str:
    text = (EXAMPLES / "vim_connectors.xml").read_text().split("-->", 1)[1]
    for i, host in enumerate(hosts, start=1):
        text = text.replace(f"http://127.0.0.1:{8440 + i}", host.url)
    return text.replace("change-me", hosts[0].password)


async def bench(root: Path, *, deployments: int, max_parallel: int) -> dict[str, float]:
    hosts = [
        EmulatorHost(name=f"CSP-{i}", root=root / "cluster", extra_args=["--cpus", "64"])
        for i in (1, 2, 3)
    ]
    timeline = Timeline()
    store = SqlDatastore.open(data_dir=root / "orchd")
    service: LifecycleService | None = None
    try:
        for host in hosts:
            host.start()
        store.edit_config(target=Datastore.RUNNING, config=_config(_connectors(hosts)))

        def factory(config: ConnectorConfig) -> Any:
            return Timed(create_connector(config), timeline)

        service = LifecycleService(
            datastore=store,
            settings=LifecycleSettings(max_parallel=max_parallel, retry_base_delay=0.2),
            factory=factory,
        )
        await service.start()
        timeline.spans.clear()
        started = time.monotonic()
        for i in range(deployments):
            payload = _config(_deployment(i, len(hosts)))
            await asyncio.to_thread(store.edit_config, target=Datastore.RUNNING, config=payload)
        edits_done = time.monotonic()
        await asyncio.sleep(0)
        await asyncio.wait_for(service.reactor.drain(), timeout=600)
        total = time.monotonic() - started
        active = sum(
            1
            for key in service.reactor.deployments()
            if (s := service.reactor.status(*key)) and s.state is DeploymentState.ACTIVE
        )
        busy = timeline.busy()
        return {
            "deployments": deployments,
            "active": active,
            "total_s": total,
            "edits_s": edits_done - started,
            "vim_calls": timeline.calls,
            "emulator_busy_s": busy,
            "emulator_sum_s": sum(b - a for a, b in timeline.spans),
            "orchestrator_s": total - busy,
            "per_deployment_ms": 1000 * total / deployments,
            "orchestrator_per_deployment_ms": 1000 * (total - busy) / deployments,
            "events": store.events.count(),
        }
    finally:
        if service is not None:
            await service.stop()
        store.close()
        for host in hosts:
            host.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--max-parallel", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="esc-bench-") as tmp:
        figures = asyncio.run(
            bench(Path(tmp), deployments=args.deployments, max_parallel=args.max_parallel)
        )
    for name, value in figures.items():
        print(f"{name:32} {value:10.3f}" if isinstance(value, float) else f"{name:32} {value:>10}")


if __name__ == "__main__":
    main()
