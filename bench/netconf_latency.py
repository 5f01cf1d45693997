"""Bench: NETCONF request latency of esc-orchd, side by side with Debian's netconfd (yuma123).

Why: the datastore bench (``datastore_edit.py``) measures validate + commit in-process; this
one measures what a NETCONF client sees over SSH on 127.0.0.1, through the real daemon and
its SQLite store, and puts the same figures for netconfd next to them.

Each server is seeded over NETCONF with ``examples/vim_connectors.xml`` (as FAKE connectors),
``examples/deploy_csp_1.xml`` and ``--extra`` more deployments (copies of the example's, in
tenant ``bench``), so get-config returns a real configuration. Then, per server:

* get-config of running, and a one-deployment edit-config (the example deployment with its
  locator moved between CSP-1 and CSP-2, so every edit changes, validates and commits),
  ``--requests`` times each over one session with
  (a) a raw client: asyncssh + esc-orch's own RFC 6242 framing, base:1.1, and
  (b) ncclient (``TICK = 0.001``, a socket with TCP_NODELAY passed as ``sock=``);
* the same with ``--sessions`` concurrent raw-client sessions (``--requests`` in total;
  edits: each session moves its own deployment): aggregate throughput and per-request
  latency.

netconfd loads our ``yang/esc.yang`` (with ``esc-types.yang`` on its module path) and runs
behind a private sshd; if it cannot run here, the bench says why and prints our figures.
Every server runs on 127.0.0.1 only and is stopped (process group) when the bench ends.

Run: .venv/bin/python bench/netconf_latency.py [--requests 200] [--extra 100] [--sessions 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import ncclient.transport.session
from lxml import etree
from ncclient import manager
from netconf_servers import (
    Endpoint,
    ServerUnavailable,
    esc_orchd,
    netconfd_version,
    yuma_netconfd,
)

from esc_orch.northbound.framing import FrameDecoder, FramingMode, encode_chunked, encode_eom

ncclient.transport.session.TICK = 0.001

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
YANG = ROOT / "yang"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ESC = "http://www.cisco.com/esc/esc"
RPC_TIMEOUT = 60.0
WARMUP = 5
GET_CONFIG = b"<get-config><source><running/></source></get-config>"


class BenchError(Exception):
    """A request failed (rpc-error or lost session): the figures would be meaningless."""


# --- payloads ---------------------------------------------------------------------------


def _example(name: str) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
    return etree.parse(str(EXAMPLES / name), parser).getroot()


def _text(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")


@dataclass(frozen=True, slots=True)
class Payloads:
    """Inner ``<config>`` contents (no ``<config>`` element), as strings."""

    seed: tuple[str, ...]
    edit: Callable[[str, str, str], str]  # (tenant, deployment, vim_id) -> config content


def payloads(extra: int) -> Payloads:
    """The seed edits and the one-deployment edit, built from the examples."""
    dm = _example("deploy_csp_1.xml")
    flavors = dm.find(f"{{{ESC}}}flavors")
    deployment = dm.find(f".//{{{ESC}}}deployment")
    assert flavors is not None and deployment is not None

    def one(tenant: str, name: str, vim_id: str) -> str:
        dep = etree.fromstring(_text(deployment))
        dep.find(f"{{{ESC}}}name").text = name  # type: ignore[union-attr]
        for vim in dep.iterfind(f".//{{{ESC}}}locator/{{{ESC}}}vim_id"):
            vim.text = vim_id
        return (
            f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>{tenant}</name>'
            f"<deployments>{_text(dep)}</deployments></tenant></tenants></esc_datamodel>"
        )

    # The connectors are the examples' with type FAKE (the in-memory connector): the daemon
    # checks connectors and refuses placing VMs on one that does not answer, and the
    # lifecycle engine really moves the VM on every edit; with no CSP hosts running, the
    # in-process fake answers, so the figures stay those of the NETCONF and datastore path.
    connectors = _text(_example("vim_connectors.xml")).replace(
        "<type>CSP</type>", "<type>FAKE</type>"
    )
    seed = [connectors, _text(dm)]
    if extra:
        deps = "".join(
            one("bench", f"b{i:03d}", "CSP-1").split("<deployments>", 1)[1].split("</deploy", 1)[0]
            + "</deployment>"
            for i in range(extra)
        )
        seed.append(
            f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>bench</name>'
            f"<deployments>{deps}</deployments></tenant></tenants></esc_datamodel>"
        )
    return Payloads(seed=tuple(seed), edit=one)


def flavor_edit(i: int) -> str:
    """A tiny change: create flavor ``bench-flavor`` on even ``i``, delete it on odd."""
    if i % 2:
        return (
            f'<esc_datamodel xmlns="{ESC}"><flavors><flavor xmlns:nc="{NC}" nc:operation="delete">'
            "<name>bench-flavor</name></flavor></flavors></esc_datamodel>"
        )
    return (
        f'<esc_datamodel xmlns="{ESC}"><flavors><flavor><name>bench-flavor</name>'
        "<vcpus>1</vcpus><memory_mb>512</memory_mb><root_disk_mb>1024</root_disk_mb>"
        "</flavor></flavors></esc_datamodel>"
    )


def tenants_edit(count: int, *, prefix: str, delete: bool = False) -> str:
    """One edit creating (or deleting) ``count`` tenants named ``{prefix}{i}``."""
    attr = f' xmlns:nc="{NC}" nc:operation="delete"' if delete else ""
    body = "".join(f"<tenant{attr}><name>{prefix}{i:05d}</name></tenant>" for i in range(count))
    return f'<esc_datamodel xmlns="{ESC}"><tenants>{body}</tenants></esc_datamodel>'


def edit_rpc(content: str) -> bytes:
    return (
        f"<edit-config><target><running/></target><config>{content}</config></edit-config>"
    ).encode()


# --- raw client: asyncssh + our framing ---------------------------------------------------


class RawSession:
    """A minimal NETCONF client: hello with base:1.1, then chunked rpcs one at a time."""

    def __init__(self, conn: Any, writer: Any, reader: Any) -> None:
        self._conn = conn
        self._writer = writer
        self._reader = reader
        self._decoder = FrameDecoder(mode=FramingMode.EOM, max_message_size=1 << 30)
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, endpoint: Endpoint) -> RawSession:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                "127.0.0.1",
                endpoint.port,
                username=endpoint.user,
                password=endpoint.password,
                client_keys=[endpoint.key_file] if endpoint.key_file else None,
                known_hosts=None,
                agent_path=None,
                config=None,
            ),
            RPC_TIMEOUT,
        )
        try:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            session = cls(conn, writer, reader)
            writer.write(
                encode_eom(
                    f'<hello xmlns="{NC}"><capabilities>'
                    "<capability>urn:ietf:params:netconf:base:1.0</capability>"
                    "<capability>urn:ietf:params:netconf:base:1.1</capability>"
                    "</capabilities></hello>".encode()
                )
            )
            hello = await asyncio.wait_for(session._read(), RPC_TIMEOUT)
            if b"urn:ietf:params:netconf:base:1.1" not in hello:
                raise BenchError("the server does not announce base:1.1")
            session._decoder.mode = FramingMode.CHUNKED
            # netconfd stalls an rpc that reaches it in the same read as the hello.
            await asyncio.sleep(0.05)
        except BaseException:
            conn.close()
            raise
        return session

    async def _read(self) -> bytes:
        while (message := self._decoder.next_message()) is None:
            data = await self._reader.read(1 << 20)
            if not data:
                raise BenchError("the server closed the session")
            self._decoder.feed(data)
        return message

    async def rpc(self, operation: bytes) -> bytes:
        message_id = next(self._ids)
        rpc = b'<rpc message-id="%d" xmlns="%s">%s</rpc>' % (message_id, NC.encode(), operation)
        self._writer.write(encode_chunked(rpc))
        reply = await asyncio.wait_for(self._read(), RPC_TIMEOUT)
        if b"rpc-error" in reply:
            raise BenchError(reply[:600].decode(errors="replace"))
        return reply

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.rpc(b"<close-session/>")
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), 5)


# --- ncclient -----------------------------------------------------------------------------


def nc_connect(endpoint: Endpoint) -> Any:
    sock = socket.create_connection(("127.0.0.1", endpoint.port), timeout=RPC_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    m = manager.connect(
        host="127.0.0.1",
        port=endpoint.port,
        username=endpoint.user,
        password=endpoint.password,
        key_filename=endpoint.key_file,
        sock=sock,
        hostkey_verify=False,
        look_for_keys=False,
        allow_agent=False,
        timeout=RPC_TIMEOUT,
        device_params={"name": "default"},
    )
    m.timeout = RPC_TIMEOUT
    return m


# --- measurements -------------------------------------------------------------------------


@dataclass
class Figure:
    """Latencies (seconds) of one measurement and its wall time."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    reply_bytes: int = 0

    def cells(self) -> tuple[str, str, str]:
        lat = sorted(self.latencies)
        median = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        return f"{median * 1e3:8.2f}", f"{p99 * 1e3:8.2f}", f"{len(lat) / self.wall:8.0f}"


async def _timed(call: Callable[[], Awaitable[bytes]], figure: Figure) -> None:
    start = time.perf_counter()
    reply = await call()
    figure.latencies.append(time.perf_counter() - start)
    figure.reply_bytes = len(reply)


async def raw_one_session(endpoint: Endpoint, requests: int, op: Callable[[int], bytes]) -> Figure:
    session = await RawSession.open(endpoint)
    try:
        for i in range(WARMUP):
            await session.rpc(op(i))
        figure = Figure()
        start = time.perf_counter()
        for i in range(requests):
            await _timed(lambda i=i: session.rpc(op(WARMUP + i)), figure)  # type: ignore[misc]
        figure.wall = time.perf_counter() - start
        return figure
    finally:
        await session.close()


async def raw_sessions(
    endpoint: Endpoint, sessions: int, requests: int, op: Callable[[int, int], bytes]
) -> Figure:
    """``requests`` in total over ``sessions`` concurrent sessions; op(session, i)."""
    opened: list[RawSession] = []
    try:
        for _ in range(sessions):
            opened.append(await RawSession.open(endpoint))
        for s, session in enumerate(opened):
            await session.rpc(op(s, 0))  # warm-up
        figure = Figure()
        per_session = max(1, requests // sessions)

        async def drive(s: int, session: RawSession) -> None:
            for i in range(per_session):
                await _timed(lambda: session.rpc(op(s, 1 + i)), figure)  # noqa: B023

        start = time.perf_counter()
        await asyncio.gather(*(drive(s, session) for s, session in enumerate(opened)))
        figure.wall = time.perf_counter() - start
        return figure
    finally:
        await asyncio.gather(*(session.close() for session in opened))


def ncclient_one_session(endpoint: Endpoint, requests: int, kind: str, edit: Any) -> Figure:
    with nc_connect(endpoint) as m:

        def call(i: int) -> int:
            if kind == "get-config":
                return len(m.get_config(source="running").data_xml)
            reply = m.edit_config(
                target="running", config=f'<config xmlns="{NC}">{edit(i)}</config>'
            )
            if not reply.ok:
                raise BenchError(str(reply.errors))
            return 0

        for i in range(WARMUP):
            call(i)
        figure = Figure()
        start = time.perf_counter()
        for i in range(requests):
            t0 = time.perf_counter()
            size = call(WARMUP + i)
            figure.latencies.append(time.perf_counter() - t0)
            figure.reply_bytes = size or figure.reply_bytes
        figure.wall = time.perf_counter() - start
        return figure


def seed(endpoint: Endpoint, loads: Payloads) -> float:
    """Apply the seed edits over NETCONF; return the get-config reply size in bytes."""
    with nc_connect(endpoint) as m:
        for content in loads.seed:
            reply = m.edit_config(
                target="running", config=f'<config xmlns="{NC}">{content}</config>'
            )
            if not reply.ok:
                raise BenchError(str(reply.errors))
        return len(m.get_config(source="running").data_xml)


Row = tuple[str, str]  # (operation, client)
ROWS: tuple[Row, ...] = (
    ("get-config", "raw, 1 session"),
    ("get-config", "ncclient, 1 session"),
    ("get-config", "raw, N sessions"),
    ("edit-config", "raw, 1 session"),
    ("edit-config", "ncclient, 1 session"),
    ("edit-config", "raw, N sessions"),
)


def measure(endpoint: Endpoint, args: argparse.Namespace, loads: Payloads) -> dict[Row, Figure]:
    size = seed(endpoint, loads)
    print(f"  {endpoint.name}: seeded, get-config reply {size / 1024:.0f} KiB", flush=True)

    def vim(i: int) -> str:
        return "CSP-2" if i % 2 == 0 else "CSP-1"

    def edit(i: int) -> str:
        return loads.edit("name1", "dep", vim(i))

    def edit_own(s: int, i: int) -> bytes:
        return edit_rpc(loads.edit("bench", f"b{s:03d}", vim(i)))

    results: dict[Row, Figure] = {}
    n = args.requests
    results[ROWS[0]] = asyncio.run(raw_one_session(endpoint, n, lambda i: GET_CONFIG))
    results[ROWS[1]] = ncclient_one_session(endpoint, n, "get-config", edit)
    results[ROWS[2]] = asyncio.run(
        raw_sessions(endpoint, args.sessions, n, lambda s, i: GET_CONFIG)
    )
    results[ROWS[3]] = asyncio.run(raw_one_session(endpoint, n, lambda i: edit_rpc(edit(i))))
    results[ROWS[4]] = ncclient_one_session(endpoint, n, "edit-config", edit)
    results[ROWS[5]] = asyncio.run(raw_sessions(endpoint, args.sessions, n, edit_own))
    return results


def report(
    columns: list[tuple[str, dict[Row, Figure] | None, str]], args: argparse.Namespace
) -> None:
    print()
    print(
        f"NETCONF over SSH on 127.0.0.1, {args.requests} requests per line "
        f"(after {WARMUP} warm-up), N = {args.sessions}; latency in ms, throughput in req/s"
    )
    head = f"{'':<12} {'client':<20}"
    for name, _, _ in columns:
        head += f" | {name:^28}"
    print(head)
    sub = f"{'':<12} {'':<20}" + f" | {'median':>8} {'p99':>8} {'req/s':>8}  " * len(columns)
    print(sub)
    for row in ROWS:
        line = f"{row[0]:<12} {row[1].replace('N', str(args.sessions)):<20}"
        for _, figures, _ in columns:
            if figures is None:
                line += f" | {'n/a':^28}"
            else:
                median, p99, rate = figures[row].cells()
                line += f" | {median} {p99} {rate}  "
        print(line)
    for name, figures, note in columns:
        if figures is None:
            print(f"{name}: not measured: {note}")
        elif note:
            print(f"{name}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument("--extra", type=int, default=100, help="deployments seeded besides dep")
    parser.add_argument("--sessions", type=int, default=10, help="concurrent sessions")
    parser.add_argument("--no-netconfd", action="store_true", help="measure esc-orchd only")
    args = parser.parse_args(argv)
    if args.sessions > args.extra:
        parser.error("--sessions must not exceed --extra (each session edits its own deployment)")
    loads = payloads(args.extra)
    print(
        f"python {platform.python_version()}, {platform.machine()}, "
        f"{len(loads.seed[-1]) // 1024} KiB of extra deployments",
        flush=True,
    )
    columns: list[tuple[str, dict[Row, Figure] | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="netconf-bench-") as tmp:
        work = Path(tmp)
        with esc_orchd(work) as endpoint:
            columns.append(("esc-orchd (SQLite)", measure(endpoint, args, loads), ""))
        if args.no_netconfd:
            columns.append(("netconfd", None, "--no-netconfd"))
        else:
            name = f"netconfd {netconfd_version()}"
            try:
                with yuma_netconfd(work, module=YANG / "esc.yang", modpath=YANG) as endpoint:
                    columns.append((name, measure(endpoint, args, loads), "yang/esc.yang loaded"))
            except (ServerUnavailable, BenchError, OSError) as exc:
                columns.append((name, None, str(exc)))
    report(columns, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
