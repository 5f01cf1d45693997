"""The real ``esc-orchd`` as a subprocess: real user store, real SQLite datastore, loopback only.

The in-thread :class:`nbsupport.server.ServerThread` runs the NETCONF code over an in-memory
backend; interop tests must also prove that independent clients work against what operators
run. This starts ``esc-orchd useradd … --password-stdin`` and ``esc-orchd serve --bind
127.0.0.1 --port 0`` and learns the port from the daemon's own ``READY=1`` notification (no
port-guessing race). The daemon runs in its own process group, which :meth:`stop` ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

ORCHD = [sys.executable, "-m", "esc_orch.daemon.cli"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOOPBACK_ANY_PORT = ("--bind", "127.0.0.1", "--port", "0")


class OrchdProcess:
    """``with OrchdProcess(data_dir=…, user=…, password=…) as d: d.port``."""

    def __init__(
        self,
        *,
        data_dir: Path,
        user: str,
        password: str,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.extra_args = tuple(extra_args)
        if "--config" not in self.extra_args:
            # The payloads name the seed's 192.168.23.x addresses, which may be pinged only in
            # a private network namespace: daemons of tests outside one monitor nothing.
            quiet = data_dir.parent / f"{data_dir.name}-orchd.toml"
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            quiet.write_text("[monitor]\nenabled = false\n")
            self.extra_args += ("--config", str(quiet))
        self.env = dict(env or {})
        self.data_dir = data_dir
        self.user = user
        self.password = password
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_path = data_dir.parent / f"{data_dir.name}-orchd.log"

    def start(self) -> OrchdProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        added = subprocess.run(
            [*ORCHD, "useradd", "--data-dir", str(self.data_dir), self.user, "--password-stdin"],
            input=f"{self.password}\n",
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if added.returncode != 0 and "already exists" not in added.stderr:  # a restart
            raise RuntimeError(f"esc-orchd useradd failed: {added.stderr.strip()}")
        # The socket path must fit in sun_path (108 bytes): a short private temp dir.
        sock_dir = tempfile.mkdtemp(prefix="orchd-")
        notify_path = os.path.join(sock_dir, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            notify.bind(notify_path)
            notify.settimeout(START_TIMEOUT)
            env = dict(os.environ, NOTIFY_SOCKET=notify_path, **self.env)
            with self._log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        *ORCHD,
                        "serve",
                        "--data-dir",
                        str(self.data_dir),
                        *LOOPBACK_ANY_PORT,
                        *self.extra_args,
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            ready = self._wait_ready(notify)
        finally:
            notify.close()
            with contextlib.suppress(OSError):
                os.unlink(notify_path)
                os.rmdir(sock_dir)
        if not ready.startswith("READY=1"):
            self.stop()
            raise RuntimeError(f"unexpected notification {ready!r}")
        self.port = int(ready.rsplit(":", 1)[1])
        return self

    def _wait_ready(self, notify: socket.socket) -> str:
        """The daemon's READY notification; fails at once when the daemon exits first."""
        assert self.proc is not None
        notify.settimeout(0.2)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"esc-orchd exited ({self.proc.returncode}) before it was ready"
                    ) from None
        self.stop()
        raise RuntimeError(f"esc-orchd did not become ready: {self.log()}")

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the daemon's process group, SIGKILL it if it does not stop in time."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> OrchdProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def require_tool(path: str | None, *, name: str) -> str:
    """Return ``path``; without it skip the test, but fail in CI, where setup installs it.

    A skip in CI would hide a broken setup script behind a green run.
    """
    import pytest  # noqa: PLC0415 - only test code calls this

    if path is not None:
        return path
    reason = f"{name} is not installed (scripts/setup.sh installs it)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; CI must have it", pytrace=False)
    pytest.skip(reason)
