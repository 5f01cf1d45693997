"""``esc-csp-sim cluster``: N host processes sharing one Gluster directory, with their power.

Each host is a separate ``esc-csp-sim host`` process (so each can be SIGKILLed or SIGSTOPped on
its own), with a power controller of its own (:mod:`esc_orch.csp_sim.power`). The launcher
prints where everything is, reports a host that exits by itself, takes commands on stdin to
kill, stop, partition, resume and restart a host by name, and stops them all on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from esc_orch.csp_sim.power import (
    HostProcess,
    HostStartError,
    PowerCredentials,
    make_power_app,
)

LOOPBACK = "127.0.0.1"

READY_TIMEOUT_S = 20.0


def host_command(
    *,
    name: str,
    port: int,
    root: Path,
    cluster_name: str,
    user: str,
    password_file: Path,
    extra: list[str] | None = None,
) -> list[str]:
    """The argv that runs host ``name`` with its directories under ``root``."""
    return [
        sys.executable,
        "-m",
        "esc_orch.csp_sim",
        "host",
        "--name",
        name,
        "--port",
        str(port),
        "--state-dir",
        str(root / name / "state"),
        "--local-dir",
        str(root / name / "local"),
        "--gluster-dir",
        str(root / "gluster"),
        "--cluster-name",
        cluster_name,
        "--user",
        user,
        "--password-file",
        str(password_file),
        *(extra or []),
    ]


def wait_ready(proc: subprocess.Popen[str], *, timeout: float = READY_TIMEOUT_S) -> str:
    """Read the host's ``READY <name> <url>`` line; returns the URL."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("emulated host did not become ready")
        readable, _, _ = select.select([proc.stdout], [], [], left)
        if not readable:
            continue
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulated host exited with {proc.wait(timeout=5)}")
        if line.startswith("READY "):
            return line.split()[2]


def write_password(path: Path) -> str:
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    return password


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Feed stdin lines to ``queue`` from a daemon thread (works for ttys, pipes and files)."""

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="esc-csp-sim-stdin", daemon=True).start()


COMMANDS = """commands (one per line on stdin):
  status                 every host: power, pid, paused, URL
  kill NAME              power loss: SIGKILL (disk locks released)
  stop NAME              graceful shutdown: SIGTERM
  partition NAME         hang: SIGSTOP (API silent, disk locks held)
  resume NAME            SIGCONT after partition
  start NAME             start a host that is off, with its persisted state
  restart NAME           kill it if it runs, then start it again
  help"""


class Cluster:
    """The hosts and power controllers of one ``esc-csp-sim cluster`` run."""

    def __init__(self, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.args, self.say = args, say
        self.root: Path = args.dir
        self.hosts: dict[str, HostProcess] = {}
        self.runners: list[web.AppRunner] = []

    def _extra(self) -> list[str]:
        args, extra = self.args, []
        if args.tls:
            extra += ["--tls", "--cert", str(args.cert), "--key", str(args.key)]
        if args.latency_ms:
            extra += ["--latency-ms", str(args.latency_ms)]
        if args.error_rate:
            extra += ["--error-rate", str(args.error_rate)]
        if args.copy_rate_kbps:
            extra += ["--copy-rate-kbps", str(args.copy_rate_kbps)]
        return extra

    def _exited(self, host: HostProcess, rc: int) -> None:
        self.say(f"EXITED {host.name} rc={rc} (restart {host.name} to start it again)")

    async def start(self) -> None:
        args = self.args
        self.root.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "password"
        password = write_password(password_file)
        extra = self._extra()
        for i in range(1, args.hosts + 1):
            name = f"CSP-{i}"

            def command(port: int, name: str = name) -> list[str]:
                return host_command(
                    name=name,
                    port=port,
                    root=self.root,
                    cluster_name=args.cluster_name,
                    user=args.user,
                    password_file=password_file,
                    extra=extra,
                )

            port = args.base_port + i - 1 if args.base_port else 0
            host = HostProcess(name=name, command=command, port=port, on_exit=self._exited)
            self.hosts[name] = host
            url = await host.start()
            power_url, power_file = await self._power_controller(host, i)
            self.say(
                f"{name} {url} user={args.user} password-file={password_file} "
                f"power-url={power_url} power-user={args.power_user} "
                f"power-password-file={power_file}"
            )
        self.say(f"cluster {args.cluster_name} up; password: {password}")

    async def _power_controller(self, host: HostProcess, index: int) -> tuple[str, Path]:
        power_file = self.root / host.name / "power.password"
        power_file.parent.mkdir(parents=True, exist_ok=True)
        creds = PowerCredentials(user=self.args.power_user, password=write_password(power_file))
        runner = web.AppRunner(make_power_app(host, creds), access_log=None)
        await runner.setup()
        base = self.args.power_base_port
        site = web.TCPSite(runner, LOOPBACK, base + index - 1 if base else 0)
        await site.start()
        self.runners.append(runner)
        return f"http://{LOOPBACK}:{runner.addresses[0][1]}", power_file

    async def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        verb, names = words[0].lower(), words[1:]
        if verb == "help":
            self.say(COMMANDS)
            return
        if verb == "status":
            for host in self.hosts.values():
                state = "paused" if host.paused else host.power.value
                self.say(f"STATUS {host.name} {state} pid={host.pid or '-'} {host.url}")
            return
        if verb not in {"kill", "stop", "partition", "resume", "restart", "start"} or not names:
            self.say(f"ERROR unknown command {line.strip()!r}; try help")
            return
        for name in names:
            found = self.hosts.get(name) or self.hosts.get(name.upper())
            if found is None:
                self.say(f"ERROR no host {name!r} (hosts: {', '.join(self.hosts)})")
                continue
            host = found
            try:
                await self._do(verb, host)
            except (HostStartError, TimeoutError, OSError) as exc:
                self.say(f"ERROR {verb} {host.name}: {exc}")
                continue
            state = "paused" if host.paused else host.power.value
            self.say(f"OK {verb} {host.name} {state}")

    async def _do(self, verb: str, host: HostProcess) -> None:
        async with host.lock:
            if verb == "kill":
                await host.kill()
            elif verb == "stop":
                await host.stop()
            elif verb == "partition":
                host.pause()
            elif verb == "resume":
                host.resume()
            elif verb == "start":
                await host.start()
            else:
                await host.kill()
                await host.start()

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        await asyncio.gather(*(h.stop() for h in self.hosts.values()))


async def _run(args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    cluster = Cluster(args, say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        if not args.no_commands:
            _stdin_lines(loop, lines)
        stopping = loop.create_task(stop.wait())
        while not stop.is_set():
            reading = loop.create_task(lines.get())
            done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if reading not in done:
                reading.cancel()
                break
            line = reading.result()
            if line is None:  # stdin closed: keep running until signalled
                await stopping
                break
            await cluster.command(line)
    finally:
        await cluster.close()
    return 0


def run_cluster(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
