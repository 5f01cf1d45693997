"""Bench: the performance table of issue 13, esc-orchd and Debian's netconfd in one run.

Why: one command that prints every figure the performance goals are judged by, for both
servers, measured the same way (the raw client of ``netconf_latency.py``: asyncssh + our
RFC 6242 framing, base:1.1, one request at a time per session), so a claim of "faster than
netconfd" is checked on this machine, now, under its current load (printed).

Rows, per server (both seeded with ``examples/vim_connectors.xml`` as FAKE connectors,
``examples/deploy_csp_1.xml`` and ``--extra`` more deployments):

* edit-config, tiny change: create or delete one flavor;
* edit-config, one deployment with its locator moved between CSP-1 and CSP-2 (esc-orchd
  runs its lifecycle: the move is carried out on the FAKE connectors);
* get-config of the whole datastore (reply size printed);
* 10 concurrent sessions: edit-config (each its own deployment) and get-config throughput;
* a get-config from a second session while one edit-config creates 4,000 tenants
  (snapshot reads: it must not wait for the edit);
* N tenants created in one edit-config (then deleted again in one);
* the one-deployment edit with 10 vm_groups configured and with 10,000 (flat cost), on a
  second daemon started with ``--no-lifecycle`` (so 10,000 deployments are not deployed
  meanwhile), then esc-orchd's start-up time and resident memory with those 10,000 groups.

CPU per request is the server process's user+system time over the measurement divided by
the requests (netconfd's SSH side runs in sshd and netconf-subsystem, not counted; ours is).

Run: .venv/bin/python bench/netconf_table.py [--quick]   (--quick: under 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import netconf_latency
from netconf_latency import (
    ESC,
    GET_CONFIG,
    YANG,
    BenchError,
    Payloads,
    RawSession,
    edit_rpc,
    flavor_edit,
    payloads,
    raw_sessions,
    tenants_edit,
)
from netconf_servers import (
    Endpoint,
    ServerUnavailable,
    cpu_seconds,
    esc_orchd,
    netconfd_version,
    rss_bytes,
    settle,
    yuma_netconfd,
)


@dataclass
class Cell:
    """One measured figure: latencies (s), CPU per request (s), and a note."""

    latencies: list[float] = field(default_factory=list)
    cpu: float | None = None
    rate: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    def text(self) -> str:
        if not self.latencies:
            return self.note or "n/a"
        if self.rate is not None:
            return f"{self.rate:.0f} req/s, p50 {self.median * 1e3:.1f} ms"
        if len(self.latencies) == 1:
            return f"{self.latencies[0] * 1e3:.0f} ms"
        return f"{self.median * 1e3:.2f} ms (p90 {_p90(self.latencies) * 1e3:.2f})"


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


Table = dict[str, Cell]


async def _series(endpoint: Endpoint, count: int, op: Callable[[int], bytes]) -> Cell:
    session = await RawSession.open(endpoint)
    try:
        for i in range(3):
            await session.rpc(op(i))
        cell = Cell()
        cpu0 = cpu_seconds(endpoint.pid) if endpoint.pid else None
        for i in range(count):
            start = time.perf_counter()
            await session.rpc(op(3 + i))
            cell.latencies.append(time.perf_counter() - start)
        if cpu0 is not None and endpoint.pid:
            cell.cpu = (cpu_seconds(endpoint.pid) - cpu0) / count
        return cell
    finally:
        await session.close()


async def _one(endpoint: Endpoint, op: bytes) -> float:
    session = await RawSession.open(endpoint)
    try:
        start = time.perf_counter()
        await session.rpc(op)
        return time.perf_counter() - start
    finally:
        await session.close()


async def _read_during_edit(endpoint: Endpoint, tenants: int) -> tuple[Cell, float]:
    """get-config latencies from one session while another runs a ``tenants`` edit."""
    editor, reader = await RawSession.open(endpoint), await RawSession.open(endpoint)
    small = (
        b'<get-config><source><running/></source><filter type="subtree">'
        b'<esc_datamodel xmlns="' + ESC.encode() + b'"><flavors/></esc_datamodel>'
        b"</filter></get-config>"
    )
    try:
        edit = asyncio.ensure_future(editor.rpc(edit_rpc(tenants_edit(tenants, prefix="r"))))
        start = time.perf_counter()
        cell = Cell()
        await asyncio.sleep(0.02)  # the edit is on its way first
        while not edit.done():
            t0 = time.perf_counter()
            await reader.rpc(small)
            cell.latencies.append(time.perf_counter() - t0)
        await edit
        took = time.perf_counter() - start
        await editor.rpc(edit_rpc(tenants_edit(tenants, prefix="r", delete=True)))
        return cell, took
    finally:
        await editor.close()
        await reader.close()


def _stage(what: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {what}", flush=True)


def measure(endpoint: Endpoint, loads: Payloads, args: argparse.Namespace) -> Table:
    table: Table = {}
    _stage("seeding")
    n = args.requests
    for content in loads.seed:
        asyncio.run(_one(endpoint, edit_rpc(content)))
    settle(endpoint.pid)

    def vim(i: int) -> str:
        return "CSP-2" if i % 2 == 0 else "CSP-1"

    _stage("single-session rows")
    table["tiny"] = asyncio.run(_series(endpoint, n, lambda i: edit_rpc(flavor_edit(i))))
    table["deployment"] = asyncio.run(
        _series(endpoint, n, lambda i: edit_rpc(loads.edit("name1", "dep", vim(i))))
    )
    settle(endpoint.pid)
    get = asyncio.run(_series(endpoint, n, lambda i: GET_CONFIG))
    table["get"] = get
    size = asyncio.run(_get_size(endpoint))
    get.note = f"{size / 1024:.0f} KiB"
    _stage("concurrent sessions")
    for kind, op in (
        ("sessions edit", lambda s, i: edit_rpc(loads.edit("bench", f"b{s:03d}", vim(i)))),
        ("sessions get", lambda s, i: GET_CONFIG),
    ):
        cpu0 = cpu_seconds(endpoint.pid) if endpoint.pid else 0.0
        fig = asyncio.run(raw_sessions(endpoint, args.sessions, n * 2, op))
        table[kind] = Cell(latencies=fig.latencies, rate=len(fig.latencies) / fig.wall)
        if endpoint.pid:
            table[kind].cpu = (cpu_seconds(endpoint.pid) - cpu0) / len(fig.latencies)
        settle(endpoint.pid)
    if endpoint.name == "esc-orchd":
        _stage("idle with a notif subscriber")
        table["idle"] = idle(endpoint, seconds=5.0 if args.quick else 20.0)
    _stage("read during a big edit, tenants")
    reads, took = asyncio.run(_read_during_edit(endpoint, 4000))
    reads.note = f"edit took {took * 1e3:.0f} ms"
    table["read during edit"] = reads
    for count in args.tenants:
        took = asyncio.run(_one(endpoint, edit_rpc(tenants_edit(count, prefix="t"))))
        table[f"tenants {count}"] = Cell(latencies=[took])
        asyncio.run(_one(endpoint, edit_rpc(tenants_edit(count, prefix="t", delete=True))))
        if took > 20:
            break
    return table


def idle(endpoint: Endpoint, *, seconds: float) -> Cell:
    """CPU share of the daemon and of one ``esc_nc_cli notif`` while nothing happens."""
    assert endpoint.pid is not None and endpoint.password is not None
    cli = Path(sys.executable).parent / "esc_nc_cli"
    proc = subprocess.Popen(
        [
            str(cli),
            "--port",
            str(endpoint.port),
            "--user",
            endpoint.user,
            "--password",
            endpoint.password,
            "notif",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        settle(endpoint.pid)
        daemon0, cli0, start = cpu_seconds(endpoint.pid), cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - start
        daemon = (cpu_seconds(endpoint.pid) - daemon0) / took
        client = (cpu_seconds(proc.pid) - cli0) / took
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return Cell(note=f"daemon {daemon:.2%}, notif {client:.2%} of a core ({took:.0f} s)")


async def _get_size(endpoint: Endpoint) -> int:
    session = await RawSession.open(endpoint)
    try:
        return len(await session.rpc(GET_CONFIG))
    finally:
        await session.close()


def _groups_edit(start: int, count: int) -> str:
    """``count`` deployments of one compact vm_group each (name, locator, image, flavor, one
    interface: leafrefs to a flavor and a VIM connector, as every group has), tenant scale."""
    deps = "".join(
        f"<deployment><name>s{i:05d}</name><vm_group><name>g</name>"
        "<locator><vim_id>CSP-1</vim_id><vim_project>CSP-1</vim_project></locator>"
        "<image>csr1000v-universalk9.16.06.01.qcow2</image>"
        "<flavor>FLAVOR_2_4096_10000</flavor><bootup_time>600</bootup_time>"
        "<interfaces><interface><nicid>0</nicid><network>Eth0-2</network></interface>"
        "</interfaces></vm_group></deployment>"
        for i in range(start, start + count)
    )
    return (
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>scale</name>'
        f"<deployments>{deps}</deployments></tenant></tenants></esc_datamodel>"
    )


def measure_scale(
    server: Callable[[], AbstractContextManager[Endpoint]],
    loads: Payloads,
    args: argparse.Namespace,
) -> tuple[Table, Endpoint | None]:
    """The one-deployment edit with 10 and with ``args.groups`` vm_groups configured."""
    table: Table = {}
    with server() as endpoint:
        for content in loads.seed[:2]:
            asyncio.run(_one(endpoint, edit_rpc(content)))
        asyncio.run(_one(endpoint, edit_rpc(_groups_edit(0, 9))))

        def op(i: int) -> bytes:
            return edit_rpc(loads.edit("name1", "dep", "CSP-2" if i % 2 == 0 else "CSP-1"))

        table["scale 10"] = asyncio.run(_series(endpoint, args.requests, op))
        _stage(f"seeding {args.groups} vm_groups")
        batch = 2000 if endpoint.name == "esc-orchd" else 500
        for start in range(9, args.groups - 1, batch):
            count = min(batch, args.groups - 1 - start)
            asyncio.run(_one(endpoint, edit_rpc(_groups_edit(start, count))))
        few = max(3, args.requests // 10) if endpoint.name == "netconfd" else args.requests
        _stage("measuring")
        table["scale big"] = asyncio.run(_series(endpoint, few, op))
        if endpoint.pid is not None:
            table["rss loaded"] = Cell(note=f"{rss_bytes(endpoint.pid) / 2**20:.0f} MiB")
    return table, endpoint


def startup(workdir: Path, table: Table) -> None:
    """esc-orchd restarted on the data directory holding the many vm_groups."""
    data_dir = workdir / "scale-data"
    with esc_orchd(workdir, data_dir=data_dir, serve_args=["--no-lifecycle"]) as endpoint:
        assert endpoint.pid is not None and endpoint.started_in is not None
        table["startup nolc"] = Cell(
            note=f"{endpoint.started_in:.2f} s, RSS {rss_bytes(endpoint.pid) / 2**20:.0f} MiB"
        )
    with esc_orchd(workdir, data_dir=data_dir) as endpoint:
        assert endpoint.pid is not None and endpoint.started_in is not None
        table["startup"] = Cell(
            note=f"{endpoint.started_in:.2f} s, RSS {rss_bytes(endpoint.pid) / 2**20:.0f} MiB"
        )


ROWS = (
    ("tiny", "edit-config: create or delete one flavor"),
    ("deployment", "edit-config: one deployment, locator moved (FAKE)"),
    ("get", "get-config: whole datastore"),
    ("sessions edit", "N sessions: edit-config throughput"),
    ("sessions get", "N sessions: get-config throughput"),
    ("read during edit", "get-config while another session edits 4,000 tenants"),
    ("idle", "idle CPU, 101 deployments, one esc_nc_cli notif"),
    ("scale 10", "edit-config one deployment, 10 vm_groups"),
    ("scale big", "edit-config one deployment, G vm_groups"),
    ("rss loaded", "RSS with G vm_groups"),
    ("startup nolc", "start-up with G vm_groups (--no-lifecycle)"),
    ("startup", "start-up with G vm_groups (lifecycle on)"),
)


def _rows(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    for key, template in ROWS:
        label = template.replace("N sessions", f"{args.sessions} sessions")
        yield key, label.replace("G vm_groups", f"{args.groups:,} vm_groups")
        if key == "read during edit":
            for count in args.tenants:
                yield f"tenants {count}", f"edit-config: {count:,} tenants in one edit"


def report(ours: Table, theirs: Table | None, why: str, args: argparse.Namespace) -> None:
    print()
    load = os.getloadavg()
    print(
        f"{args.requests} requests per latency row (medians, p90), raw client base:1.1; "
        f"load average now {load[0]:.2f} {load[1]:.2f} on {os.cpu_count()} cores"
    )
    head = (
        f"| {'request':<55} | {'esc-orchd':<28} | {'netconfd ' + netconfd_version():<28} "
        f"| {'ratio':>5} | {'CPU/req ours':>12} | {'CPU/req netconfd':>16} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(part)) for part in head.split("|")[1:-1]) + "|")
    for key, label in _rows(args):
        mine = ours.get(key, Cell())
        other = (theirs or {}).get(key, Cell(note=why if theirs is None else "n/a"))
        ratio = ""
        if mine.latencies and other.latencies:
            if mine.rate and other.rate:
                ratio = f"{other.rate / mine.rate:.2f}"
            else:
                ratio = f"{mine.median / other.median:.2f}"
        cpu = f"{mine.cpu * 1e3:.2f} ms" if mine.cpu is not None else ""
        their_cpu = f"{other.cpu * 1e3:.2f} ms" if other.cpu is not None else ""
        text = mine.text() + (f" {mine.note}" if mine.latencies and mine.note else "")
        other_text = other.text() + (f" {other.note}" if other.latencies and other.note else "")
        print(
            f"| {label:<55} | {text:<28} | {other_text[:60]:<28} | {ratio:>5} "
            f"| {cpu:>12} | {their_cpu:>16} |"
        )
    print("ratio: esc-orchd time / netconfd time (for throughput rows: netconfd / esc-orchd);")
    print("below 1 means esc-orchd is faster.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: under 2 minutes")
    parser.add_argument("--requests", type=int, help="requests per latency row (default 100)")
    parser.add_argument("--extra", type=int, default=100, help="deployments seeded besides dep")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--groups", type=int, default=10_000, help="vm_groups of the scale rows")
    parser.add_argument("--no-netconfd", action="store_true")
    args = parser.parse_args(argv)
    args.requests = args.requests or (30 if args.quick else 100)
    args.tenants = (250, 1000, 4000) if args.quick else (250, 500, 1000, 2000, 4000)
    loads = payloads(args.extra)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netconf-table-") as tmp:
        work = Path(tmp)
        print("esc-orchd ...", flush=True)
        with esc_orchd(work) as endpoint:
            ours = measure(endpoint, loads, args)
        print("esc-orchd, scale ...", flush=True)
        scale, _ = measure_scale(
            lambda: esc_orchd(work, data_dir=work / "scale-data", serve_args=["--no-lifecycle"]),
            loads,
            args,
        )
        ours.update(scale)
        startup(work, ours)
        theirs: Table | None = None
        why = "--no-netconfd"
        if not args.no_netconfd:
            print("netconfd ...", flush=True)
            try:
                with yuma_netconfd(work, module=YANG / "esc.yang", modpath=YANG) as endpoint:
                    theirs = measure(endpoint, loads, args)
                (work / "yuma").rename(work / "yuma-1")
                if args.quick:
                    why_scale = "not in --quick (netconfd re-validates all)"
                    theirs.update({"scale 10": Cell(note=why_scale), "scale big": Cell()})
                else:
                    print("netconfd, scale ...", flush=True)
                    netconf_latency.RPC_TIMEOUT = 900.0  # seeding 10,000 groups is slow there
                    scale, _ = measure_scale(
                        lambda: yuma_netconfd(work, module=YANG / "esc.yang", modpath=YANG),
                        loads,
                        args,
                    )
                    theirs.update(scale)
            except (ServerUnavailable, BenchError, OSError, TimeoutError) as exc:
                why = str(exc)[:60] or type(exc).__name__
                print(f"netconfd: {exc!r}"[:300], flush=True)
    report(ours, theirs, why, args)
    print(f"bench wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
