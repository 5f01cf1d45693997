"""``esc-csp-sim``: run one emulated CSP host, or a cluster of them, as real processes.

A host serves on 127.0.0.1 only. It prints one line ``READY <name> <url>`` on stdout once it
listens (tests and the cluster launcher wait for it), and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from esc_orch.csp_sim.api import ApiSettings, make_app
from esc_orch.csp_sim.cluster import run_cluster
from esc_orch.csp_sim.guestnet import NetnsGuest, NotIsolated
from esc_orch.csp_sim.host import CspHost
from esc_orch.csp_sim.service import DiskStorage

LOOPBACK = "127.0.0.1"

DESCRIPTION = """\
An emulated Cisco CSP 2100 cluster for testing esc-orch: each host is a real HTTP(S) server
process on 127.0.0.1 speaking the CSP REST API, with disks as sparse files locked like QEMU's.

  esc-csp-sim host ...      run one host (prints "READY <name> <url>" when it listens)
  esc-csp-sim cluster ...   run N hosts sharing one Gluster directory, each with a power
                            controller, and take fault commands on stdin

See docs/csp-emulator.md for the REST API, the power controller and the faults."""

CLUSTER_HELP = """\
Starts CSP-1..CSP-N sharing DIR/gluster and prints one line per host:

  CSP-1 <url> user=<user> password-file=DIR/password power-url=<url>
        power-user=<user> power-password-file=DIR/CSP-1/power.password

A power controller (as a BMC would be) answers GET /power and POST /power
{"action": "on"|"off"|"cycle"} with its own credentials; "off" kills the host process.
A host that exits by itself is reported as "EXITED <name> rc=<code>".

Commands, one per line on stdin:
  status             every host: power, pid, URL
  kill NAME          power loss (SIGKILL: its disk locks are released)
  stop NAME          graceful shutdown (SIGTERM)
  partition NAME     hang (SIGSTOP: API silent, disk locks held)
  resume NAME        continue after partition (SIGCONT)
  restart NAME       start again with its persisted services
SIGTERM or Ctrl-C stops every host."""


def _host_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "host",
        help="run one CSP host",
        description='Run one emulated CSP host; prints "READY <name> <url>" once it listens '
        "and stops cleanly on SIGTERM/SIGINT.",
    )
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--state-dir", type=Path, required=True, help="where state.json is kept")
    p.add_argument("--local-dir", type=Path, required=True, help="the host's local storage")
    p.add_argument("--gluster-dir", type=Path, help="the cluster's shared storage")
    p.add_argument("--cluster-name")
    p.add_argument("--user", default="admin")
    p.add_argument("--password-file", type=Path, help="first line is the password")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cert", type=Path)
    p.add_argument("--key", type=Path)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of 503 answers")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--fault-file",
        type=Path,
        help='JSON {"latency_ms": N, "error_rate": F}, read again whenever it changes',
    )
    p.add_argument(
        "--local-capacity-gb",
        type=float,
        help="size of the local storage (default: the free space of its file system)",
    )
    p.add_argument(
        "--gluster-capacity-gb",
        type=float,
        help="size of the shared storage (default: the free space of its file system)",
    )
    p.add_argument("--ram-mb", type=int, default=65536)
    p.add_argument("--cpus", type=int, default=32)
    p.add_argument(
        "--copy-rate-kbps",
        type=float,
        help="limit disk copies to this many KiB of data per second (to watch their progress)",
    )
    p.add_argument("--guest-net", choices=["none", "netns"], default="none")


def _cluster_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cluster",
        help="run several hosts sharing one Gluster directory, each with a power controller",
        description=CLUSTER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument(
        "--base-port", type=int, required=True, help="CSP-n listens on base+n-1; 0 picks free ports"
    )
    p.add_argument(
        "--power-base-port",
        type=int,
        default=0,
        help="CSP-n's power controller listens on base+n-1 (default 0: free ports)",
    )
    p.add_argument("--power-user", default="admin", help="user of the power controllers")
    p.add_argument("--copy-rate-kbps", type=float, help="limit disk copies (KiB of data/s)")
    p.add_argument("--no-commands", action="store_true", help="do not read commands from stdin")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--cluster-name", default="Cluster_Test")
    p.add_argument("--user", default="admin")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cert", type=Path)
    p.add_argument("--key", type=Path)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esc-csp-sim",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _host_parser(sub)
    _cluster_parser(sub)
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        lines = args.password_file.read_text().splitlines()
        if not lines or not lines[0]:
            raise SystemExit(f"esc-csp-sim: empty password file {args.password_file}")
        return str(lines[0])
    generated = secrets.token_urlsafe(18)
    print(f"generated password for {args.user}: {generated}", file=sys.stderr, flush=True)
    return generated


async def _serve_host(args: argparse.Namespace) -> int:
    guest: NetnsGuest | None = None
    if args.guest_net == "netns":
        try:
            guest = NetnsGuest(record=args.state_dir / "guest-addresses.json")
        except NotIsolated as exc:
            print(f"esc-csp-sim: {exc}", file=sys.stderr, flush=True)
            return 2
    ssl_ctx: ssl.SSLContext | None = None
    if args.tls:
        if args.cert is None or args.key is None:
            print("esc-csp-sim: --tls needs --cert and --key", file=sys.stderr)
            return 2
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.cert, args.key)
    host = CspHost(
        name=args.name,
        state_dir=args.state_dir,
        local_dir=args.local_dir,
        gluster_dir=args.gluster_dir,
        cluster_name=args.cluster_name,
        ram_total_mb=args.ram_mb,
        cpus_total=args.cpus,
        guest=guest,
        copy_rate=None if args.copy_rate_kbps is None else args.copy_rate_kbps * 1024,
        capacity_gb={
            DiskStorage.LOCAL: args.local_capacity_gb,
            DiskStorage.GLUSTER: args.gluster_capacity_gb,
        },
    )
    host.load()
    settings = ApiSettings(
        user=args.user,
        password=_password(args),
        latency_s=args.latency_ms / 1000.0,
        error_rate=args.error_rate,
        seed=args.seed,
        fault_file=args.fault_file,
        password_file=args.password_file,
    )
    runner = web.AppRunner(make_app(host, settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, args.port, ssl_context=ssl_ctx)
    await site.start()
    port = int(runner.addresses[0][1])
    scheme = "https" if ssl_ctx else "http"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Only now: a SIGTERM sent as soon as READY is read must find the handler installed.
    print(f"READY {args.name} {scheme}://{LOOPBACK}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        for entry in host.services.values():
            if entry.lock is not None:
                entry.lock.release()
        if guest is not None:
            guest.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "host":
        if not 0 <= args.error_rate <= 1:
            raise SystemExit("esc-csp-sim: --error-rate must be within [0, 1]")
        return asyncio.run(_serve_host(args))
    with contextlib.suppress(KeyboardInterrupt):
        return run_cluster(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
