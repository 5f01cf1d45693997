"""The load run's machinery: payloads, the edit cycle, sessions, subscribers, sampling.

See ``load.py`` for what a run does and what it checks (``load_checks.py``). Everything here
talks to real processes on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch.model.events import format_event_time, parse_esc_event, parse_event_time, to_millis
from functional.lifecycle.support import HOSTS, PASSWORD, USER, Cluster
from nbsupport.rawclient import NC, EomClient
from payloads import ESC_NS, EXAMPLES

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
TENANT = "name1"
FLAVORS = {"LOAD_1_1024": 1024, "LOAD_1_2048": 2048}
#: Logins at once: the daemon admits 32 unauthenticated connections per source address.
LOGINS_AT_ONCE = 8
OP_TIMEOUT_S = 180.0
RPC_TIMEOUT_S = 120.0
FD_RETURN_S = 30.0
#: Connections the store's pool keeps open (SQLAlchemy QueuePool's pool_size).
SQLITE_POOL = 5
HTTP_KEEPALIVE_PER_HOST = 8
SETTLE_S = 2.0
PROGRESS_S = 60.0
#: The replay from the start after the run (an hour's soak logs ~150,000 events).
REPLAY_TIMEOUT_S = 1200.0


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
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    #: (eventTime ms, canonical escEvent) as each subscriber received them.
    live: list[tuple[int, bytes]] = field(default_factory=list)
    replay: list[tuple[int, bytes]] = field(default_factory=list)
    replay_complete: bool = False
    baseline: Sample | None = None
    after: Sample | None = None
    fds_baseline: dict[str, int] = field(default_factory=dict)
    fds_after: dict[str, int] = field(default_factory=dict)
    started: float = 0.0


def canonical(element: etree._Element) -> bytes:
    """A digest of the event's exclusive C14N (only the namespaces it uses, not those of the
    ``<notification>`` around it): an hour of events fits in memory."""
    text: bytes = etree.tostring(element, method="c14n", exclusive=True)
    return hashlib.blake2b(text, digest_size=16).digest()


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
            into.append((parsed[0], canonical(parsed[1])))
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
            # sent once the previous operation's service event has arrived: never in-use
            reply = await self.call(
                lambda mid: action_rpc(
                    mid, "vmAction", actionType="REBOOT", vmName=vm, force="false"
                )
            )
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


def _tcp_ports() -> dict[str, tuple[int, int]]:
    """socket inode -> (local port, remote port) of every TCP socket of this machine."""
    out: dict[str, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, remote, inode = cols[1], cols[2], cols[9]
                out[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return out


def open_fds(pid: int, *, port: int, hosts: dict[int, str]) -> dict[str, int]:
    """What the daemon's fds are: NETCONF sessions, HTTP to each host, files, pipes..."""
    tcp = _tcp_ports()
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            local, remote = tcp.get(target[8:-1], (0, 0))
            if local == port:
                name = "tcp listen" if remote == 0 else "netconf session"
            elif remote in hosts:
                name = f"http to {hosts[remote]}"
            else:
                name = "socket (unix or other)" if local == 0 else f"tcp {local}->{remote}"
        elif target.startswith(("pipe:", "anon_inode:")):
            name = target.split("[")[0]
        else:
            name = "file " + Path(target).name
        kinds[name] = kinds.get(name, 0) + 1
    return dict(sorted(kinds.items()))


async def _sampler(run: Run, pid: int, every: float, stop: asyncio.Event) -> None:
    said = -PROGRESS_S
    while not stop.is_set():
        with contextlib.suppress(OSError):
            run.samples.append(now := sample(pid, run.started))
            if now.t - said >= PROGRESS_S:  # a line a minute on stderr: a soak can be watched
                said = now.t
                print(
                    f"load: {now.t:6.0f} s  operations {len(run.op_latencies)}  "
                    f"errors {len(run.errors)}  rss {now.rss_kb / 1024:.1f} MB  "
                    f"fds {now.fds}  threads {now.threads}  load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


# ---------------------------------------------------------------------- the run


async def drive(run: Run, cluster: Cluster, *, every: float, before: datetime) -> None:
    assert cluster.daemon is not None and cluster.daemon.proc is not None
    port, pid = cluster.daemon.port, cluster.daemon.proc.pid

    def dispatch(element: etree._Element) -> None:
        dep, text, vm = kind(element)
        if dep is not None and dep in run.inbox:
            run.inbox[dep].put_nowait((text, vm))

    def other(name: str) -> None:
        if name == "replayComplete":
            run.replay_complete = True

    hosts = {int(h.url.rsplit(":", 1)[1]): name for name, h in cluster.hosts.items()}
    await asyncio.sleep(SETTLE_S)  # the setup session closes
    run.baseline = sample(pid, time.monotonic())
    run.fds_baseline = open_fds(pid, port=port, hosts=hosts)
    live = await _subscribe(port, start=None)
    listeners = [asyncio.create_task(_listen(live, run.live, on_event=dispatch))]
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
    await asyncio.sleep(SETTLE_S)  # an event still in flight reaches the subscribers by then
    stop.set()
    await sampler
    for client in (live, replayer):
        client.close()
    for task in listeners:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
    # Every session closed: the fds return to the baseline (closing is asynchronous, and the
    # connectors' idle HTTP keep-alive connections close after aiohttp's 15 s).
    deadline = time.monotonic() + FD_RETURN_S
    while True:
        run.after = sample(pid, run.started)
        run.fds_after = open_fds(pid, port=port, hosts=hosts)
        if not fds_not_returned(run.fds_baseline, run.fds_after) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)


def fds_not_returned(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The kinds of fds not back to what they were before the sessions opened.

    No NETCONF session may keep a socket; every other kind returns to its count, except the
    two pools, which may stay warm within their bounds: the store's SQLite connections
    (SQLAlchemy's pool keeps 5; each holds the database and its WAL) and the connectors'
    HTTP keep-alive connections to each host (idle ones close after 15 s; health checks and
    resyncs open new ones).
    """
    out = []
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name, 0), after.get(name, 0)
        if name == "netconf session":
            bound = 0
        elif name.startswith("file esc-orch.sqlite"):
            bound = max(was, SQLITE_POOL)
        elif name.startswith("http to "):
            bound = max(was, HTTP_KEEPALIVE_PER_HOST)
        else:
            bound = was
        if now > bound:
            out.append(f"{name}: {now} (before: {was}, at most {bound})")
    return out


async def replay_all(port: int, *, start: datetime) -> tuple[list[tuple[int, bytes]], bool]:
    """Every event from ``start`` to now, by a fresh subscription with a stopTime."""
    got: list[tuple[int, bytes]] = []
    done: list[str] = []
    client = await _subscribe(port, start=start, stop=datetime.now(UTC))
    try:
        await asyncio.wait_for(_listen(client, got, on_other=done.append), REPLAY_TIMEOUT_S)
    finally:
        client.close()
    return got, "notificationComplete" in done


async def host_services(cluster: Cluster) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """VM name -> [(host, service JSON)] over every host's REST API."""
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, host in cluster.hosts.items():
        status, _, body = await host.request("GET", "/api/running/services")
        if status != 200:
            raise RuntimeError(f"{name}: GET services {status}")
        for service in (body or {}).get("services", {}).get("service", []):
            seen.setdefault(service["name"], []).append((name, service))
    return seen
