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

``lifecycle_share_pct`` leaves the datastore edits out as well (the NETCONF edit path is
measured by bench/netconf_latency.py): the wall time during which neither a VIM call nor an
edit-config of the datastore was in progress, over the total. With ``--per-edit N`` each
edit-config carries N deployments (default 1: one edit per deployment; ``--per-edit 0``: all
of them in one edit). ``share_vs_bare_pct`` compares with the same VIM calls made by bare
connectors to fresh hosts (``bare_emulator_s``, :func:`bare_emulator`): the share of the time
from the first edit's return to the last deployment done that the emulator alone does not
need (with one edit, the lifecycle's; with many, the later edits are in it too). The union
measure cannot see an orchestrator that keeps the process busy while a call is in flight (its
reply then waits in the socket), so the bare replay and CPU time are printed too:
this process's (the orchestrator and the connectors' HTTP client) and the emulator processes',
per deployment. ``lifecycle_commits`` is how many transactions the lifecycle's store made.

``--latency-ms`` gives every emulator call that latency (a real CSP takes seconds to create and
boot a VM): figures taken with it are *not* at the emulator's default speed; say so.

    .venv/bin/python bench/lifecycle_deploy.py [--deployments 100] [--max-parallel 4]
        [--per-edit 1] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
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


#: One VIM call as made: (connector id, method, args, kwargs).
Call = tuple[str, str, tuple[Any, ...], dict[str, Any]]


class Timeline:
    """Intervals of VIM calls in flight (monotonic seconds), and the calls of each run."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.calls = 0
        #: The calls of each deployment's reactor runs, in order (see tag_reactor_runs).
        self.chains: dict[str, list[Call]] = {}
        #: The configuration of each connector built.
        self.configs: dict[str, ConnectorConfig] = {}

    def busy(self) -> float:
        return union(self.spans)


#: The deployment whose reactor worker (and the tasks it starts) makes the current call.
RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("RUN", default=None)


def tag_reactor_runs(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks of ``Reactor._work`` (and every task they start, e.g. ``wait_for``'s) carry
    their deployment in :data:`RUN`, so each VIM call is charged to its deployment's chain."""

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if getattr(coro, "__qualname__", "") == "Reactor._work":
            context = contextvars.copy_context()
            context.run(RUN.set, repr(coro.cr_frame.f_locals["key"]))
            kwargs["context"] = context
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)


class Timed:
    """A connector whose every coroutine method is timed into ``timeline``."""

    def __init__(self, inner: Any, timeline: Timeline, connector_id: str = "") -> None:
        self._inner, self._timeline, self._id = inner, timeline, connector_id

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            run = RUN.get()
            if run is not None:
                self._timeline.chains.setdefault(run, []).append((self._id, name, args, kwargs))
            started = time.monotonic()
            try:
                return await attr(*args, **kwargs)
            finally:
                self._timeline.spans.append((started, time.monotonic()))
                self._timeline.calls += 1

        return timed


async def bare_emulator(
    root: Path,
    timeline: Timeline,
    *,
    parallel: int,
    extra: list[str],
    before: Sequence[list[Call]] = (),
) -> tuple[float, float]:
    """Wall time of the same VIM calls, per run in the same order, ``parallel`` runs at once,
    made by the bare connectors to fresh emulator hosts: the emulator's own operation time
    for this workload, with no orchestrator around (only the reactor runs' calls count).
    ``before``: chains replayed first, not timed (what put the hosts in their starting state,
    e.g. the deployment a move then moves). Returns that wall time and this process's CPU
    time meanwhile (the connectors' HTTP)."""
    hosts = {
        cid: EmulatorHost(name=cid, root=root / "bare", extra_args=extra)
        for cid in sorted(timeline.configs)
    }
    connectors: dict[str, Any] = {}
    try:
        for cid, host in hosts.items():
            host.start()
            config = timeline.configs[cid]
            props = dict(config.properties) | {"url": host.url}
            creds = config.credentials
            if creds is not None:
                creds = dataclasses.replace(creds, password=host.password)
            connectors[cid] = create_connector(
                dataclasses.replace(config, properties=props, credentials=creds)
            )
        limit = asyncio.Semaphore(parallel)

        async def replay(chain: list[Call]) -> None:
            async with limit:
                for cid, method, args, kwargs in chain:
                    await getattr(connectors[cid], method)(*args, **kwargs)

        await asyncio.gather(*(replay(c) for c in before))
        started, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(replay(c) for c in timeline.chains.values()))
        return time.monotonic() - started, time.process_time() - cpu
    finally:
        for connector in connectors.values():
            await connector.close()
        for host in hosts.values():
            host.close()


def _config(xml: str, *more: str) -> etree._Element:
    """``<config>`` of ``xml``; the ``deployment`` elements of ``more`` join its first one."""
    config = etree.Element(f"{{{NC_NS}}}config")
    root = parse_xml(xml.encode())
    config.append(root)
    first = next(root.iter("{*}deployment"), None)
    for other in more:
        assert first is not None
        for deployment in parse_xml(other.encode()).iter("{*}deployment"):
            first.addnext(deployment)
            first = deployment
    return config


def union(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of ``spans``."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def bench(
    root: Path, *, deployments: int, max_parallel: int, per_edit: int = 1, latency_ms: float = 0
) -> dict[str, float]:
    room = ["--cpus", str(max(64, deployments)), "--ram-mb", str(max(65536, 256 * deployments))]
    latency = ["--latency-ms", str(latency_ms)] if latency_ms else []
    hosts = [
        EmulatorHost(name=f"CSP-{i}", root=root / "cluster", extra_args=room + latency)
        for i in (1, 2, 3)
    ]
    timeline = Timeline()
    tag_reactor_runs(asyncio.get_running_loop())
    store = SqlDatastore.open(data_dir=root / "orchd")
    service: LifecycleService | None = None
    try:
        for host in hosts:
            host.start()
        store.edit_config(target=Datastore.RUNNING, config=_config(_connectors(hosts)))

        def factory(config: ConnectorConfig) -> Any:
            timeline.configs[config.id] = config
            return Timed(create_connector(config), timeline, config.id)

        service = LifecycleService(
            datastore=store,
            settings=LifecycleSettings(max_parallel=max_parallel, retry_base_delay=0.2),
            factory=factory,
        )
        await service.start()
        timeline.spans.clear()
        timeline.chains.clear()
        commits = getattr(service.store, "commits", lambda: 0)
        commits_before = commits()
        chunk = per_edit if per_edit > 0 else deployments
        payloads = [
            _config(
                *(_deployment(i, len(hosts)) for i in range(first, min(first + chunk, deployments)))
            )
            for first in range(0, deployments, chunk)
        ]
        emulator_cpu = sum(cpu_s(h.proc.pid) for h in hosts if h.proc is not None)
        cpu = time.process_time()
        edits: list[tuple[float, float]] = []
        started = time.monotonic()
        for payload in payloads:
            began = time.monotonic()
            await asyncio.to_thread(store.edit_config, target=Datastore.RUNNING, config=payload)
            edits.append((began, time.monotonic()))
        edits_done, edits_cpu = time.monotonic(), time.process_time() - cpu
        await asyncio.sleep(0)
        await asyncio.wait_for(service.reactor.drain(), timeout=600)
        total = time.monotonic() - started
        cpu = time.process_time() - cpu
        emulator_cpu = sum(cpu_s(h.proc.pid) for h in hosts if h.proc is not None) - emulator_cpu
        active = sum(
            1
            for key in service.reactor.deployments()
            if (s := service.reactor.status(*key)) and s.state is DeploymentState.ACTIVE
        )
        busy = timeline.busy()
        lifecycle = total - union(timeline.spans + edits)
        # From the first edit's return (its commit starts the lifecycle): with one edit, the
        # lifecycle alone; with many, the later edits too (the orchestrator's all the same).
        window = total - (edits[0][1] - started)
        bare, bare_cpu = await bare_emulator(
            root, timeline, parallel=max_parallel, extra=room + latency
        )
        return {
            "deployments": deployments,
            "active": active,
            "edits": len(payloads),
            "latency_ms": latency_ms,
            "total_s": total,
            "edits_s": edits_done - started,
            "vim_calls": timeline.calls,
            "emulator_busy_s": busy,
            "emulator_sum_s": sum(b - a for a, b in timeline.spans),
            "orchestrator_s": total - busy,
            "orchestrator_share_pct": 100 * (total - busy) / total,
            "lifecycle_s": lifecycle,
            "lifecycle_share_pct": 100 * lifecycle / total,
            "per_deployment_ms": 1000 * total / deployments,
            "orchestrator_per_deployment_ms": 1000 * (total - busy) / deployments,
            "lifecycle_per_deployment_ms": 1000 * lifecycle / deployments,
            "after_first_edit_s": window,
            "bare_emulator_s": bare,
            "share_vs_bare_pct": 100 * (window - bare) / window,
            "orchd_cpu_per_deployment_ms": 1000 * cpu / deployments,
            "edits_cpu_per_deployment_ms": 1000 * edits_cpu / deployments,
            "emulator_cpu_per_deployment_ms": 1000 * emulator_cpu / deployments,
            "bare_client_cpu_per_deployment_ms": 1000 * bare_cpu / deployments,
            "lifecycle_commits": commits() - commits_before,
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
    parser.add_argument("--per-edit", type=int, default=1, help="deployments per edit (0: all)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator latency per call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="esc-bench-") as tmp:
        figures = asyncio.run(
            bench(
                Path(tmp),
                deployments=args.deployments,
                max_parallel=args.max_parallel,
                per_edit=args.per_edit,
                latency_ms=args.latency_ms,
            )
        )
    for name, value in figures.items():
        print(f"{name:32} {value:10.3f}" if isinstance(value, float) else f"{name:32} {value:>10}")


if __name__ == "__main__":
    main()
