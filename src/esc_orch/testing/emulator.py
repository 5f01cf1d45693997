"""Start, fault and stop ``esc-csp-sim host`` processes from tests.

Faults are real process states (SIGKILL, SIGSTOP, restart), so this module only wraps
``subprocess`` and signals; :meth:`EmulatorHost.close` always leaves no process behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import aiohttp

from esc_orch.csp_sim.cluster import host_command, wait_ready
from esc_orch.fence.types import FenceAgentConfig
from esc_orch.model.schema import EO_NS as EO_NAMESPACE
from esc_orch.vim.types import ConnectorConfig, Credentials

#: The hosts' password, new for each test process: a daemon another run left behind keeps
#: retrying its connectors' URLs, and an ephemeral port reused by a host of this run must not
#: let it in (it would create its VMs there: seen as a deployment found already made).
SESSION_PASSWORD = f"contract-{secrets.token_hex(8)}"


@dataclass
class EmulatorHost:
    """One emulated CSP host process under ``root/<name>``, sharing ``root/gluster``."""

    name: str
    root: Path
    password: str = SESSION_PASSWORD
    user: str = "admin"
    cluster_name: str = "Cluster_Test"
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    url: str = ""
    proc: subprocess.Popen[str] | None = None

    @property
    def password_file(self) -> Path:
        return self.root / f"{self.name}.password"

    @property
    def gluster_dir(self) -> Path:
        return self.root / "gluster"

    @property
    def local_dir(self) -> Path:
        return self.root / self.name / "local"

    @property
    def state_file(self) -> Path:
        return self.root / self.name / "state" / "state.json"

    def start(self, *, timeout: float = 20.0) -> str:
        """Start (or restart, on the same port) and wait until it listens; returns its URL."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        cmd = host_command(
            name=self.name,
            port=self.port,
            root=self.root,
            cluster_name=self.cluster_name,
            user=self.user,
            password_file=self.password_file,
            extra=self.extra_args,
        )
        log = open(self.root / f"{self.name}.log", "a")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            log.close()
        try:
            self.url = wait_ready(self.proc, timeout=timeout)
        except BaseException:
            self.close()
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """Power the host off: SIGKILL (the kernel drops its disk locks)."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        self._reap()

    def pause(self) -> None:
        """Partition the host: SIGSTOP (locks held, API silent)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self) -> None:
        """Graceful stop (SIGTERM)."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        self._reap()

    def _reap(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def close(self) -> None:
        """Always safe: whatever state the process is in, it is gone afterwards."""
        self.kill()

    def config(
        self, *, id: str | None = None, password: str | None = None, **properties: str
    ) -> ConnectorConfig:
        """A CSP connector configuration for this host."""
        props = {"url": self.url, "cluster_name": self.cluster_name, **properties}
        return ConnectorConfig(
            id=id or self.name,
            type="CSP",
            properties={k: v for k, v in props.items() if v != ""},
            credentials=Credentials(user=self.user, password=password or self.password),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        content_type: str = "application/vnd.yang.data+json",
        auth: tuple[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One raw HTTP request to the host; returns (status, headers, decoded JSON or None)."""
        user, password = auth or (self.user, self.password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        if data is not None:
            headers["Content-Type"] = content_type
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.url + path, data=data, headers=headers) as resp,
        ):
            text = await resp.text()
            return resp.status, dict(resp.headers), json.loads(text) if text else None

    def __enter__(self) -> EmulatorHost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class ClusterHost:
    """One host of an :class:`EmulatorCluster` as ``esc-csp-sim cluster`` printed it."""

    name: str
    url: str
    user: str
    password: str
    power_url: str
    power_user: str
    power_password: str


class EmulatorCluster:
    """``esc-csp-sim cluster`` as a child process, driven by its stdin commands.

    ``hosts`` are parsed from its start-up lines; :meth:`command` sends one command and returns
    the answer lines; ``exits`` collects the ``EXITED …`` reports. :meth:`close` always leaves
    no process behind.
    """

    def __init__(self, root: Path, *, hosts: int = 2, extra_args: list[str] | None = None) -> None:
        self.root = root
        self.hosts: dict[str, ClusterHost] = {}
        self.exits: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        cmd = [sys.executable, "-m", "esc_orch.csp_sim", "cluster", "--hosts", str(hosts),
               "--base-port", "0", "--dir", str(root), *(extra_args or [])]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        try:
            while len(self.hosts) < hosts:
                self._add(self._next(timeout=30.0))
            while not self._next(timeout=10.0).startswith("cluster "):
                pass
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("EXITED "):
                self.exits.append(line.strip())
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, *, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("esc-csp-sim cluster said nothing") from None
        if line is None:
            raise RuntimeError(f"esc-csp-sim cluster exited with {self.proc.wait(timeout=10)}")
        return line

    def _add(self, line: str) -> None:
        name, url, *pairs = line.split()
        kv = dict(p.split("=", 1) for p in pairs)
        self.hosts[name] = ClusterHost(
            name=name,
            url=url,
            user=kv["user"],
            password=Path(kv["password-file"]).read_text().strip(),
            power_url=kv["power-url"],
            power_user=kv["power-user"],
            power_password=Path(kv["power-password-file"]).read_text().strip(),
        )

    def command(self, line: str, *, timeout: float = 30.0) -> list[str]:
        """Send one stdin command; the lines up to its ``OK``/``ERROR`` (or ``STATUS`` set)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        verb = line.split(maxsplit=1)[0].lower()
        out: list[str] = []
        while True:
            got = self._next(timeout=timeout).rstrip("\n")
            if got.startswith("EXITED "):
                continue
            out.append(got)
            if verb == "status":
                if len(out) == len(self.hosts):
                    return out
            elif got.startswith(("OK ", "ERROR ")):
                return out

    def _ok(self, verb: str, name: str) -> None:
        answer = self.command(f"{verb} {name}")[-1]
        if not answer.startswith("OK "):
            raise RuntimeError(answer)

    def kill(self, name: str) -> None:
        """Power loss (SIGKILL): the host's disk locks are released."""
        self._ok("kill", name)

    def pause(self, name: str) -> None:
        """Partition (SIGSTOP): API silent, locks held."""
        self._ok("partition", name)

    def resume(self, name: str) -> None:
        self._ok("resume", name)

    def start(self, name: str) -> None:
        """Start a host that is off, with its persisted services, on its port."""
        self._ok("start", name)

    def restart(self, name: str) -> None:
        self._ok("restart", name)

    def wait_exit_report(self, name: str, *, timeout: float = 10.0) -> str:
        """The ``EXITED <name> …`` line, once the launcher has reported it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for report in self.exits:
                if report.split()[1] == name:
                    return report
            time.sleep(0.05)
        raise TimeoutError(f"no EXITED report for {name}")

    def config(self, name: str, **properties: str) -> ConnectorConfig:
        host = self.hosts[name]
        return ConnectorConfig(
            id=name,
            type="CSP",
            properties={"url": host.url, "cluster_name": "Cluster_Test", **properties},
            credentials=Credentials(user=host.user, password=host.password),
        )

    def fence_config(
        self, name: str, *, url: str | None = None, password: str | None = None
    ) -> FenceAgentConfig:
        """A fence agent configuration for ``name``'s power controller."""
        host = self.hosts[name]
        return FenceAgentConfig(
            id=f"power-{name}",
            type="CSP_SIM_POWER",
            properties={"url": url or host.power_url, "timeout": "10"},
            credentials=Credentials(user=host.power_user, password=password or host.power_password),
        )

    def fence_agent_xml(self, name: str, *, timeout: int = 5) -> str:
        """The ``eo:fence_agent`` element naming ``name``'s power controller, to put in the
        ``vim_connector`` of ``name`` (yang/esc-orch.yang; docs/fencing.md)."""
        host = self.hosts[name]
        fields = (
            ("type", "CSP_SIM_POWER"),
            ("url", host.power_url),
            ("host", name),
            ("username", host.power_user),
            ("password", host.power_password),
            ("timeout", str(timeout)),
        )
        body = "".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in fields)
        return f'<fence_agent xmlns="{EO_NAMESPACE}">{body}</fence_agent>'

    def pid(self, name: str) -> int | None:
        """The host's process id, from ``status`` (None when it is off)."""
        for line in self.command("status"):
            words = line.split()
            if words[1] == name:
                pid = words[3].removeprefix("pid=")
                return None if pid == "-" else int(pid)
        raise KeyError(name)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> EmulatorCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
