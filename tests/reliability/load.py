"""Load and soak: N NETCONF sessions editing their own deployments while two subscribers listen.

What runs, all real processes on 127.0.0.1: three emulated CSP hosts and ``esc-orchd serve``
on a SQLite data directory (:class:`functional.lifecycle.support.Cluster`, monitoring off).
The generator is this process (one asyncio loop, raw asyncssh clients with base:1.0 framing,
:class:`nbsupport.rawclient.EomClient`, so the client side stays cheap on 2 cores):

* ``--sessions`` sessions (50), each owning deployment ``load-NN`` (the seed payload, one VM,
  a 1-vCPU flavor, spread over the three hosts), loop through a fixed cycle of operations —
  deploy, ``recovery_wait_time`` change, flavor change (a re-create), ``vmAction REBOOT``,
  ``recovery_wait_time`` change, undeploy — each sent, then awaited until its last event
  arrives, until ``--minutes`` have passed (each session then finishes the operation it is in);
* a *live* subscriber (``create-subscription`` to ``escEvent``) from before the first edit;
* a *replay* subscriber, started a quarter into the run with a ``startTime`` before the daemon
  started: it replays the whole log while the edits go on, then follows live;
* every ``--sample`` seconds the daemon's RSS, open fds and threads (``/proc/PID``).

After the run, with the edit sessions closed, the invariants (each failure is a problem line;
any problem makes the script exit 1):

* **no errors**: every RPC got ``<ok/>`` (an action answered ``in-use`` while the previous
  run finishes is retried and counted, not an error), every operation's last event came;
* **events**: the durable log (``event_log``, read from SQLite) is what each subscriber
  received — exactly once each, in log order (the live one from its subscription on, the replay
  one all of it) — and what a third subscriber replaying from the start with a ``stopTime``
  receives after the run; each deployment's events in the log are exactly its operations'
  events, in order, with their types;
* **state**: each deployment's opdata matches its last configuration (deployed: active, one
  alive VM; undeployed: absent); on the hosts, exactly one VM per deployed deployment, on its
  host, powered on, with its flavor's memory; no other VM; no disk without its VM;
* **flat**: after a warm-up (the first quarter of the run), the largest RSS of the last third
  of the samples is within ``--rss-slack`` (10 %) of the largest of the first third, and the
  same for fds (within ``--fd-slack``, 10 %, + 4); after the sessions are closed, the fds
  return to the baseline measured before they opened (+ ``FD_RETURN_SLACK``).

Run: ``.venv/bin/python tests/reliability/load.py [--sessions 50] [--minutes 2]``; the soak:
``--minutes 60``. ``tests/reliability/test_load_ci.py`` runs a short form under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree

if __package__ in (None, ""):  # run as a script: tests/ on the path, as pytest has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esc_orch.model.events import format_event_time, parse_esc_event, parse_event_time, to_millis
from functional.lifecycle.support import HOSTS, PASSWORD, USER, Cluster, connect, edit
from nbsupport.rawclient import NC, EomClient
from payloads import ESC_NS, EXAMPLES

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
TENANT = "name1"
FLAVORS = {"LOAD_1_1024": 1024, "LOAD_1_2048": 2048}
#: Logins at once: the daemon admits 32 unauthenticated connections per source address.
LOGINS_AT_ONCE = 8
OP_TIMEOUT_S = 180.0
RPC_TIMEOUT_S = 120.0
FD_RETURN_SLACK = 2
SETTLE_S = 2.0


# ---------------------------------------------------------------------- payloads


def _seed_deployment() -> str:
    text = (EXAMPLES / "deploy_csp_1.xml").read_text().split("-->", 1)[1]
    start = text.index("<deployment>")
    end = text.index("</deployment>") + len("</deployment>")
    return text[start:end]


_SEED = _seed_deployment()


def dep_name(index: int) -> str:
    return f"load-{index:02d}"


def host_of(index: int) -> str:
    return HOSTS[index % len(HOSTS)]


def deployment_xml(index: int, *, flavor: str, wait: int) -> str:
    """Deployment ``load-NN``: the seed's, on its host, its own IP, the given flavor/wait."""
    host = host_of(index)
    body = (
        _SEED.replace("<name>dep</name>", f"<name>{dep_name(index)}</name>")
        .replace("<vim_id>CSP-1</vim_id>", f"<vim_id>{host}</vim_id>")
        .replace("<vim_project>CSP-1</vim_project>", f"<vim_project>{host}</vim_project>")
        .replace("<flavor>FLAVOR_2_4096_10000</flavor>", f"<flavor>{flavor}</flavor>")
        .replace("192.168.23.61", f"192.168.23.{100 + index}")
        .replace(
            "<recovery_wait_time>60</recovery_wait_time>",
            f"<recovery_wait_time>{wait}</recovery_wait_time>",
        )
    )
    return _tenant(body)


def _tenant(deployments: str) -> str:
    return (
        f'<esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>{TENANT}</name>'
        f"<deployments>{deployments}</deployments></tenant></tenants></esc_datamodel>"
    )


def delete_xml(index: int) -> str:
    return _tenant(
        f'<deployment xmlns:nc="{NC}" nc:operation="delete"><name>{dep_name(index)}</name>'
        "</deployment>"
    )


def flavors_xml() -> str:
    flavors = "".join(
        f"<flavor><name>{name}</name><vcpus>1</vcpus><memory_mb>{mb}</memory_mb>"
        "<root_disk_mb>10240</root_disk_mb></flavor>"
        for name, mb in FLAVORS.items()
    )
    return f'<esc_datamodel xmlns="{ESC_NS}"><flavors>{flavors}</flavors></esc_datamodel>'


def _rpc(mid: int, body: str) -> bytes:
    return f'<rpc xmlns="{NC}" message-id="{mid}">{body}</rpc>'.encode()


def edit_rpc(mid: int, config: str) -> bytes:
    return _rpc(
        mid,
        f"<edit-config><target><running/></target><config>{config}</config></edit-config>",
    )


def action_rpc(mid: int, name: str, **leaves: str) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in leaves.items())
    return _rpc(mid, f'<{name} xmlns="{ESC_NS}">{inner}</{name}>')


def subscribe_rpc(mid: int, *, start: datetime | None, stop: datetime | None = None) -> bytes:
    times = ""
    if start is not None:
        times += f"<startTime>{format_event_time(start)}</startTime>"
    if stop is not None:
        times += f"<stopTime>{format_event_time(stop)}</stopTime>"
    return _rpc(
        mid,
        f'<create-subscription xmlns="{NOTIF_NS}"><stream>escEvent</stream>{times}'
        "</create-subscription>",
    )


# ---------------------------------------------------------------------- the cycle


@dataclass
class DepState:
    """What one session last configured for its deployment, and what it expects to be logged."""

    index: int
    deployed: bool = False
    flavor: str = "LOAD_1_1024"
    wait: int = 60
    vm: str | None = None
    expected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Op:
    name: str
    #: ``short()`` kinds of the events it logs, the last one ends it.
    events: tuple[str, ...]


DEPLOY = Op("deploy", ("VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"))
WAIT = Op("recovery_wait_time", ("SERVICE_UPDATED",))
FLAVOR = Op("flavor", ("VM_UPDATED FLAVOR_UPDATED", "SERVICE_UPDATED"))
REBOOT = Op("vmAction REBOOT", ("VM_REBOOTED",))
UNDEPLOY = Op("undeploy", ("VM_UNDEPLOYED", "SERVICE_UNDEPLOYED"))
CYCLE = (DEPLOY, WAIT, FLAVOR, REBOOT, WAIT, UNDEPLOY)


def kind(element: etree._Element) -> tuple[str | None, str, str | None]:
    """(depname, short kind, vm name) of an ``escEvent`` element."""
    event = parse_esc_event(element)
    text = str(event.event.type)
    if event.vm_update_type is not None:
        text += f" {event.vm_update_type}"
    if str(event.status) != "SUCCESS":
        text += "/FAILURE"
    vm = event.vm_source.vmname if event.vm_source is not None else None
    return event.depname, text, vm


# ---------------------------------------------------------------------- run state


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int
    threads: int


@dataclass
class Run:
    sessions: int
    seconds: float
    deps: list[DepState]
    #: Per deployment: events as the live subscriber delivered them (session waits on these).
    inbox: dict[str, asyncio.Queue[tuple[str, str | None]]]
    edits: int = 0
    rpc_latencies: list[float] = field(default_factory=list)
    op_latencies: list[float] = field(default_factory=list)
    in_use_retries: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    #: (eventTime ms, canonical escEvent) as each subscriber received them.
    live: list[tuple[int, bytes]] = field(default_factory=list)
    replay: list[tuple[int, bytes]] = field(default_factory=list)
    replay_complete: bool = False
    baseline: Sample | None = None
    after: Sample | None = None
    started: float = 0.0


def _canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n")


def _notification(message: bytes) -> tuple[int, etree._Element] | str | None:
    """(eventTime ms, escEvent) of a notification; 'replayComplete' etc.; None otherwise."""
    root = etree.fromstring(message)
    if root.tag != f"{{{NOTIF_NS}}}notification":
        return None
    when = root.findtext(f"{{{NOTIF_NS}}}eventTime")
    found = root.find(f"{{{ESC_NS}}}escEvent")
    if found is None:
        return etree.QName(root[-1]).localname
    assert when is not None
    return to_millis(parse_event_time(when)), found


async def _subscribe(
    port: int, *, start: datetime | None, stop: datetime | None = None
) -> EomClient:
    client = await EomClient.open(port, user=USER, password=PASSWORD)
    client.send(subscribe_rpc(1, start=start, stop=stop))
    reply = await client.raw_reply()
    if b"<ok/>" not in reply:
        raise RuntimeError(f"create-subscription refused: {reply[:500]!r}")
    return client


async def _listen(
    client: EomClient,
    into: list[tuple[int, bytes]],
    *,
    on_event: Callable[[etree._Element], None] | None = None,
    on_other: Callable[[str], None] | None = None,
) -> None:
    """Record every escEvent the subscription delivers until the session ends."""
    while True:
        try:
            message = await client.raw_reply(wait=3600)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError):
            return
        parsed = _notification(message)
        if isinstance(parsed, tuple):
            into.append((parsed[0], _canonical(parsed[1])))
            if on_event is not None:
                on_event(parsed[1])
        elif isinstance(parsed, str) and on_other is not None:
            on_other(parsed)
            if parsed == "notificationComplete":
                return


# ---------------------------------------------------------------------- sessions


class Session:
    """One edit session and its deployment."""

    def __init__(self, run: Run, dep: DepState, client: EomClient) -> None:
        self.run, self.dep, self.client = run, dep, client
        self.mid = 0

    async def call(self, rpc: Callable[[int], bytes]) -> bytes:
        self.mid += 1
        began = time.monotonic()
        self.client.send(rpc(self.mid))
        reply = await self.client.raw_reply(wait=RPC_TIMEOUT_S)
        self.run.rpc_latencies.append(time.monotonic() - began)
        self.run.edits += 1
        return reply

    async def step(self, op: Op) -> None:
        dep, index = self.dep, self.dep.index
        inbox = self.run.inbox[dep_name(index)]
        began = time.monotonic()
        if op is DEPLOY:
            dep.flavor, dep.wait = "LOAD_1_1024", 60
            body = deployment_xml(index, flavor=dep.flavor, wait=dep.wait)
            reply = await self.call(lambda mid: edit_rpc(mid, body))
        elif op is WAIT:
            dep.wait = 121 - dep.wait
            body = deployment_xml(index, flavor=dep.flavor, wait=dep.wait)
            reply = await self.call(lambda mid: edit_rpc(mid, body))
        elif op is FLAVOR:
            dep.flavor = "LOAD_1_2048" if dep.flavor == "LOAD_1_1024" else "LOAD_1_1024"
            body = deployment_xml(index, flavor=dep.flavor, wait=dep.wait)
            reply = await self.call(lambda mid: edit_rpc(mid, body))
        elif op is REBOOT:
            assert dep.vm is not None
            vm = dep.vm
            deadline = time.monotonic() + 30
            while True:
                reply = await self.call(
                    lambda mid: action_rpc(
                        mid, "vmAction", actionType="REBOOT", vmName=vm, force="false"
                    )
                )
                if b"<error-tag>in-use</error-tag>" not in reply or time.monotonic() > deadline:
                    break
                self.run.in_use_retries += 1
                await asyncio.sleep(0.2)
        else:
            reply = await self.call(lambda mid: edit_rpc(mid, delete_xml(index)))
        if b"<ok/>" not in reply:
            self.run.errors.append(f"{dep_name(index)} {op.name}: {reply[:600]!r}")
            return
        dep.deployed = op is not UNDEPLOY
        dep.expected += op.events
        await self._await(op, inbox, began)

    async def _await(
        self, op: Op, inbox: asyncio.Queue[tuple[str, str | None]], began: float
    ) -> None:
        last = op.events[-1]
        deadline = began + OP_TIMEOUT_S
        while True:
            try:
                got, vm = await asyncio.wait_for(inbox.get(), deadline - time.monotonic())
            except TimeoutError:
                self.run.errors.append(f"{dep_name(self.dep.index)} {op.name}: no {last}")
                return
            if op is DEPLOY and got == "VM_DEPLOYED":
                self.dep.vm = vm
            if got == last:
                self.run.op_latencies.append(time.monotonic() - began)
                return

    async def loop(self, until: float) -> None:
        i = 0
        try:
            while time.monotonic() < until:
                await self.step(CYCLE[i % len(CYCLE)])
                i += 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError) as exc:
            self.run.errors.append(f"{dep_name(self.dep.index)}: session lost: {exc!r}")


# ---------------------------------------------------------------------- sampling


def sample(pid: int, t0: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Sample(
        t=time.monotonic() - t0,
        rss_kb=int(values["VmRSS"].split()[0]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(values["Threads"]),
    )


async def _sampler(run: Run, pid: int, every: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            run.samples.append(sample(pid, run.started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


# ---------------------------------------------------------------------- the run


async def _drive(run: Run, cluster: Cluster, *, every: float, before: datetime) -> None:
    assert cluster.daemon is not None and cluster.daemon.proc is not None
    port, pid = cluster.daemon.port, cluster.daemon.proc.pid

    def dispatch(element: etree._Element) -> None:
        dep, text, vm = kind(element)
        if dep is not None and dep in run.inbox:
            run.inbox[dep].put_nowait((text, vm))

    def other(name: str) -> None:
        if name == "replayComplete":
            run.replay_complete = True

    live = await _subscribe(port, start=None)
    listeners = [asyncio.create_task(_listen(live, run.live, on_event=dispatch))]
    await asyncio.sleep(SETTLE_S)
    run.baseline = sample(pid, time.monotonic())
    gate = asyncio.Semaphore(LOGINS_AT_ONCE)

    async def login() -> EomClient:
        async with gate:
            return await EomClient.open(port, user=USER, password=PASSWORD)

    clients = await asyncio.gather(*(login() for _ in run.deps))
    run.started = time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(run, pid, every, stop))
    until = run.started + run.seconds
    sessions = [Session(run, dep, client) for dep, client in zip(run.deps, clients, strict=True)]
    loops = [asyncio.create_task(s.loop(until)) for s in sessions]
    await asyncio.sleep(run.seconds / 4)
    replayer = await _subscribe(port, start=before)
    listeners.append(asyncio.create_task(_listen(replayer, run.replay, on_other=other)))
    await asyncio.gather(*loops)
    for client in clients:
        client.close()
    await asyncio.sleep(SETTLE_S)
    stop.set()
    await sampler
    # fds back to the baseline once the sessions are gone (closing is asynchronous)
    deadline = time.monotonic() + 15
    while True:
        run.after = sample(pid, run.started)
        assert run.baseline is not None
        if run.after.fds <= run.baseline.fds + FD_RETURN_SLACK or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    # an event still in flight reaches the subscribers by then
    await asyncio.sleep(SETTLE_S)
    for client in (live, replayer):
        client.close()
    for task in listeners:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)


async def _replay_all(port: int, *, start: datetime) -> tuple[list[tuple[int, bytes]], bool]:
    """Every event from ``start`` to now, by a fresh subscription with a stopTime."""
    got: list[tuple[int, bytes]] = []
    done: list[str] = []
    client = await _subscribe(port, start=start, stop=datetime.now(UTC))
    try:
        await asyncio.wait_for(_listen(client, got, on_other=done.append), 300)
    finally:
        client.close()
    return got, "notificationComplete" in done


def durable_log(cluster: Cluster) -> list[tuple[int, bytes, str | None, str]]:
    """(eventTime ms, canonical escEvent, depname, kind) of every logged escEvent, by id."""
    path = cluster.root / "orchd" / "esc-orch.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        rows = db.execute("SELECT event_time, payload FROM event_log ORDER BY id").fetchall()
    out = []
    for millis, body in rows:
        element = etree.fromstring(bytes(body))
        found = (
            element
            if element.tag == f"{{{ESC_NS}}}escEvent"
            else element.find(f".//{{{ESC_NS}}}escEvent")
        )
        if found is None:
            continue
        dep, text, _ = kind(found)
        out.append((int(millis), _canonical(found), dep, text))
    return out


def _compare(name: str, got: list[tuple[int, bytes]], want: list[tuple[int, bytes]]) -> list[str]:
    if got == want:
        return []
    seen = [t for t, _ in got]
    dupes = len(seen) - len(set(seen))
    missing = len({t for t, _ in want} - set(seen))
    extra = len(set(seen) - {t for t, _ in want})
    first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    return [
        f"{name}: {len(got)} events received, {len(want)} logged: {dupes} duplicated, "
        f"{missing} missing, {extra} not in the log, first difference at #{first}"
    ]


async def _host_services(cluster: Cluster) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """VM name -> [(host, service JSON)] over every host's REST API."""
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, host in cluster.hosts.items():
        status, _, body = await host.request("GET", "/api/running/services")
        if status != 200:
            raise RuntimeError(f"{name}: GET services {status}")
        for service in (body or {}).get("services", {}).get("service", []):
            seen.setdefault(service["name"], []).append((name, service))
    return seen


def check_state(cluster: Cluster, run: Run, services: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    from functional.lifecycle.support import NS, opdata  # noqa: PLC0415

    with connect(cluster) as m:
        data = opdata(m)
    for dep in run.deps:
        name = dep_name(dep.index)
        found = data.xpath(
            f"//e:tenant[e:name='{TENANT}']/e:deployments[e:deployment_name='{name}']",
            namespaces=NS,
        )
        mine = {vm: where for vm, where in services.items() if vm.startswith(f"{name}_")}
        if not dep.deployed:
            if found:
                problems.append(f"{name}: undeployed but in opdata")
            if mine:
                problems.append(f"{name}: undeployed but VMs on hosts: {sorted(mine)}")
            continue
        if not found:
            problems.append(f"{name}: deployed but not in opdata")
            continue
        d = found[0]
        state = d.findtext("e:state_machine/e:state", namespaces=NS)
        vms = [
            m.findtext("e:state", namespaces=NS)
            for m in d.iterfind("e:state_machine/e:vm_state_machines/e:vm_state_machine", NS)
        ]
        if state != "SERVICE_ACTIVE_STATE" or vms != ["VM_ALIVE_STATE"]:
            problems.append(f"{name}: opdata {state} {vms}")
        if len(mine) != 1:
            problems.append(f"{name}: VMs on hosts {sorted(mine)}, expected one")
            continue
        ((vm, where),) = mine.items()
        hosts = [h for h, _ in where]
        service = where[0][1]
        if hosts != [host_of(dep.index)] or str(service.get("power")) != "on":
            problems.append(f"{name}: {vm} on {hosts} power {service.get('power')}")
        if service.get("memory") != FLAVORS[dep.flavor]:
            problems.append(f"{name}: memory {service.get('memory')}, flavor {dep.flavor}")
    mine_all = {dep_name(d.index) for d in run.deps}
    strays = sorted(vm for vm in services if vm.split("_", 1)[0] not in mine_all)
    if strays:
        problems.append(f"VMs of no deployment on the hosts: {strays}")
    host = next(iter(cluster.hosts.values()))
    dirs = [host.gluster_dir] + [h.local_dir for h in cluster.hosts.values()]
    disks = {p.stem for d in dirs if d.exists() for p in d.glob("load-*.qcow2")}
    orphans = sorted(disks - set(services))
    if orphans:
        problems.append(f"orphan disks {orphans}")
    return problems


def check_events(run: Run, log: list[tuple[int, bytes, str | None, str]]) -> list[str]:
    problems: list[str] = []
    pairs = [(t, c) for t, c, _, _ in log]
    first_live = run.live[0][0] if run.live else None
    live_from = next((i for i, (t, _) in enumerate(pairs) if t == first_live), len(pairs))
    problems += _compare("live subscriber", run.live, pairs[live_from:])
    if live_from > 0 and any(dep is not None for _, _, dep, _ in log[:live_from]):
        problems.append("live subscriber: events of deployments logged before its first one")
    problems += _compare("replay subscriber", run.replay, pairs)
    if not run.replay_complete:
        problems.append("replay subscriber: no replayComplete")
    for dep in run.deps:
        name = dep_name(dep.index)
        logged = [text for _, _, d, text in log if d == name]
        if logged != dep.expected:
            problems.append(f"{name}: events {logged[-8:]}..., expected {dep.expected[-8:]}...")
    return problems


def flatness(run: Run, *, rss_slack: float, fd_slack: float) -> tuple[dict[str, float], list[str]]:
    """Figures of the samples and what is not flat (see the module docstring)."""
    samples = [s for s in run.samples if s.t >= run.seconds / 4]
    figures: dict[str, float] = {}
    problems: list[str] = []
    if not run.samples:
        return figures, ["no samples"]
    figures["peak_rss_mb"] = max(s.rss_kb for s in run.samples) / 1024
    figures["peak_fds"] = max(s.fds for s in run.samples)
    figures["peak_threads"] = max(s.threads for s in run.samples)
    if len(samples) >= 6:
        third = len(samples) // 3
        head, tail = samples[:third], samples[-third:]
        rss_head, rss_tail = max(s.rss_kb for s in head), max(s.rss_kb for s in tail)
        fd_head, fd_tail = max(s.fds for s in head), max(s.fds for s in tail)
        figures["rss_first_third_max_mb"] = rss_head / 1024
        figures["rss_last_third_max_mb"] = rss_tail / 1024
        figures["rss_drift_pct"] = 100 * (rss_tail - rss_head) / rss_head
        figures["fds_first_third_max"] = fd_head
        figures["fds_last_third_max"] = fd_tail
        if rss_tail > rss_head * (1 + rss_slack):
            problems.append(
                f"RSS not flat: last third max {rss_tail / 1024:.1f} MB > first third max "
                f"{rss_head / 1024:.1f} MB + {rss_slack:.0%}"
            )
        if fd_tail > fd_head * (1 + fd_slack) + 4:
            problems.append(f"fds not flat: last third max {fd_tail} > first third max {fd_head}")
    else:
        problems.append(f"too few samples after the warm-up ({len(samples)}) to judge flatness")
    assert run.baseline is not None and run.after is not None
    figures["baseline_rss_mb"] = run.baseline.rss_kb / 1024
    figures["after_rss_mb"] = run.after.rss_kb / 1024
    figures["baseline_fds"] = run.baseline.fds
    figures["fds_after"] = run.after.fds
    figures["baseline_threads"] = run.baseline.threads
    figures["threads_after"] = run.after.threads
    if run.after.fds > run.baseline.fds + FD_RETURN_SLACK:
        problems.append(
            f"fds did not return: {run.after.fds} after the sessions closed, "
            f"{run.baseline.fds} before they opened"
        )
    return figures, problems


@dataclass
class Report:
    figures: dict[str, float]
    problems: list[str]
    samples: list[Sample] = field(default_factory=list)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_load(
    root: Path,
    *,
    sessions: int,
    seconds: float,
    every: float = 2.0,
    rss_slack: float = 0.10,
    fd_slack: float = 0.10,
) -> Report:
    """One load run under ``root`` (see the module docstring); its figures and problems."""
    before = datetime.now(UTC) - timedelta(minutes=1)
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root)
    cluster.config.write_text(
        cluster.config.read_text() + f"[limits]\nmax_sessions = {sessions + 16}\n"
    )
    run = Run(
        sessions=sessions,
        seconds=seconds,
        deps=[DepState(index=i) for i in range(sessions)],
        inbox={dep_name(i): asyncio.Queue() for i in range(sessions)},
    )
    load_before = os.getloadavg()
    try:
        cluster.start_hosts()
        cluster.start_daemon()
        with connect(cluster) as m:
            edit(m, f"<config>{cluster.connectors_xml()}{flavors_xml()}</config>")
        assert cluster.daemon is not None
        began = time.monotonic()

        async def drive() -> tuple[list[tuple[int, bytes]], bool, dict[str, Any]]:
            await _drive(run, cluster, every=every, before=before)
            replayed, complete = await _replay_all(cluster.daemon.port, start=before)  # type: ignore[union-attr]
            return replayed, complete, await _host_services(cluster)

        replayed, complete, services = asyncio.run(drive())
        wall = time.monotonic() - began
        log = durable_log(cluster)
        problems = list(run.errors)
        problems += check_events(run, log)
        problems += _compare("replay after the run", replayed, [(t, c) for t, c, _, _ in log])
        if not complete:
            problems.append("replay after the run: no notificationComplete")
        problems += check_state(cluster, run, services)
        figures, flat = flatness(run, rss_slack=rss_slack, fd_slack=fd_slack)
        problems += flat
    finally:
        cluster.close()
    operations = len(run.op_latencies)
    figures = {
        "sessions": sessions,
        "minutes": seconds / 60,
        "wall_s": wall,
        "rpcs": run.edits,
        "rpcs_per_s": run.edits / seconds,
        "operations_done": operations,
        "rpc_p50_ms": _quantile(run.rpc_latencies, 0.5) * 1000,
        "rpc_p90_ms": _quantile(run.rpc_latencies, 0.9) * 1000,
        "rpc_max_ms": max(run.rpc_latencies, default=float("nan")) * 1000,
        "operation_p50_s": _quantile(run.op_latencies, 0.5),
        "operation_p90_s": _quantile(run.op_latencies, 0.9),
        "in_use_retries": run.in_use_retries,
        "events_logged": len(log),
        "events_live": len(run.live),
        "events_replay": len(run.replay),
        "events_replayed_after": len(replayed),
        **figures,
        "samples": len(run.samples),
        "loadavg_1m_before": load_before[0],
        "loadavg_1m_after": os.getloadavg()[0],
        "errors": len(run.errors),
    }
    return Report(figures=figures, problems=problems, samples=run.samples)


def print_report(report: Report) -> None:
    width = max(len(k) for k in report.figures)
    for key, value in report.figures.items():
        text = f"{value:.2f}" if isinstance(value, float) and not value.is_integer() else value
        if isinstance(text, float):
            text = int(text)
        print(f"{key:<{width}}  {text}")
    if report.problems:
        print(f"\n{len(report.problems)} invariant(s) failed:")
        for line in report.problems[:50]:
            print(f"  - {line}")
    else:
        print("\nall invariants held")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--rss-slack", type=float, default=0.10)
    parser.add_argument("--fd-slack", type=float, default=0.10)
    parser.add_argument("--keep", type=Path, help="run under this directory and keep it")
    parser.add_argument("--samples-csv", type=Path, help="write the samples here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        report = run_load(
            root,
            sessions=args.sessions,
            seconds=args.minutes * 60,
            every=args.sample,
            rss_slack=args.rss_slack,
            fd_slack=args.fd_slack,
        )
    if args.samples_csv is not None:
        lines = ["t_s,rss_kb,fds,threads"]
        lines += [f"{s.t:.1f},{s.rss_kb},{s.fds},{s.threads}" for s in report.samples]
        args.samples_csv.write_text("\n".join(lines) + "\n")
    print_report(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
