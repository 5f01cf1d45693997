"""Start, fault and stop ``esc-csp-sim host`` processes from tests.

Faults are real process states (SIGKILL, SIGSTOP, restart), so this module only wraps
``subprocess`` and signals; :meth:`EmulatorHost.close` always leaves no process behind.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from esc_orch.csp_sim.cluster import host_command, wait_ready
from esc_orch.vim.types import ConnectorConfig, Credentials


@dataclass
class EmulatorHost:
    """One emulated CSP host process under ``root/<name>``, sharing ``root/gluster``."""

    name: str
    root: Path
    password: str = "contract-secret"
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
