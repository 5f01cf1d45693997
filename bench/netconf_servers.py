"""The NETCONF servers the latency bench compares, started on 127.0.0.1 and always stopped.

Two servers, each behind SSH as a client sees it:

* ``esc-orchd serve`` with its real user store and SQLite datastore (what operators run);
  the port comes from its ``READY=1`` notification.
* Debian's ``netconfd`` (yuma123) behind a private OpenSSH ``sshd`` (own config, host key,
  authorized key and pid file in a temporary directory, listening on 127.0.0.1 only) whose
  ``Subsystem netconf`` line runs ``netconf-subsystem``. netconf-subsystem picks the
  netconfd socket by the *sshd* port (``--ncxserver-sockname=SSHPORT@SOCKET``), and netconfd
  must be told that same port (``--port``).

Every process runs in its own process group and is ended by group (SIGTERM, then SIGKILL)
in ``finally`` blocks; netconfd's socket file and the temporary directories are removed.
netconfd writes ``~/.yuma/startup-cfg-txid.txt`` whatever ``--home`` says: it is put back
as it was. Kept apart from ``tests/`` so the bench runs from a plain checkout.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
NETCONFD = "/usr/sbin/netconfd"
SUBSYSTEM = "/usr/sbin/netconf-subsystem"
SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
ORCHD_SERVE_ARGS = ("--bind", "127.0.0.1", "--port", "0", "--log-level", "warning")


class ServerUnavailable(Exception):
    """A server cannot be started here; the message says why (shown in the bench output)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach a started server: password or key login on 127.0.0.1:port."""

    name: str
    port: int
    user: str
    password: str | None = None
    key_file: str | None = None
    #: The server process (for profiling, CPU and memory figures), when it is ours.
    pid: int | None = None
    #: Seconds from starting the process to its readiness.
    started_in: float | None = None


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End ``proc`` and everything in its process group, bounded."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(
    check: Callable[[], bool], *, what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"{what} exited ({proc.returncode}): {_tail(log)}")
        if check():
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"{what} not ready after {START_TIMEOUT:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return ""


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def esc_orchd(
    workdir: Path, *, data_dir: Path | None = None, serve_args: Sequence[str] = ()
) -> Iterator[Endpoint]:
    """``esc-orchd serve`` on 127.0.0.1 with one user; a fresh data directory unless
    ``data_dir`` (kept, e.g. to measure a restart) is given."""
    orchd = [sys.executable, "-m", "esc_orch.daemon.cli"]
    data_dir = data_dir or workdir / "orchd-data"
    user, password = "bench", "bench-pw"
    existed = data_dir.exists()
    subprocess.run(
        [*orchd, "useradd", "--data-dir", str(data_dir), user, "--password-stdin"],
        input=f"{password}\n".encode(),
        capture_output=True,
        timeout=START_TIMEOUT,
        check=not existed,  # a kept directory has the user already
    )
    sock_dir = Path(tempfile.mkdtemp(prefix="orchd-"))  # short: sun_path is 108 bytes
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log_path = workdir / "esc-orchd.log"
    # Monitoring off: the seed's VM addresses (192.168.23.x) are outside the default
    # allowed_networks, and the bench measures the NETCONF path, not KPI polling.
    config = workdir / "esc-orchd.toml"
    config.write_text("[monitor]\nenabled = false\n")
    proc: subprocess.Popen[bytes] | None = None
    try:
        notify.bind(str(sock_dir / "notify"))
        notify.settimeout(START_TIMEOUT)
        env = dict(os.environ, NOTIFY_SOCKET=str(sock_dir / "notify"), PYTHONUNBUFFERED="1")
        env.pop("ESC_ORCHD_TEST_BACKEND", None)
        started = time.monotonic()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [
                    *orchd,
                    "serve",
                    "--data-dir",
                    str(data_dir),
                    "--config",
                    str(config),
                    *ORCHD_SERVE_ARGS,
                    *serve_args,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            ready = notify.recv(4096).decode()
        except TimeoutError:
            raise ServerUnavailable(f"esc-orchd did not start: {_tail(log_path)}") from None
        notify.close()
        yield Endpoint(
            name="esc-orchd",
            port=int(ready.rsplit(":", 1)[1]),
            user=user,
            password=password,
            pid=proc.pid,
            started_in=time.monotonic() - started,
        )
    finally:
        notify.close()
        if proc is not None:
            stop_group(proc)
        shutil.rmtree(sock_dir, ignore_errors=True)


def netconfd_missing() -> str | None:
    """Why netconfd cannot run here, or None."""
    for path in (NETCONFD, SUBSYSTEM, SSHD):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (scripts/setup.sh installs netconfd, openssh-server)"
    if shutil.which(SSH_KEYGEN) is None:
        return "ssh-keygen is not installed"
    if not os.path.isdir("/run/sshd"):
        if os.geteuid() != 0:
            return "sshd needs /run/sshd (its privilege separation directory); run as root"
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    return None


@contextlib.contextmanager
def _restored(path: Path) -> Iterator[None]:
    """Put ``path`` back as it was (absent or with its bytes) on exit."""
    before = path.read_bytes() if path.exists() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


@contextlib.contextmanager
def yuma_netconfd(workdir: Path, *, module: Path, modpath: Path) -> Iterator[Endpoint]:
    """netconfd loaded with ``module``, behind a private sshd; key login as the current user."""
    reason = netconfd_missing()
    if reason is not None:
        raise ServerUnavailable(reason)
    home = workdir / "yuma"
    home.mkdir()
    user = getpass.getuser()
    port = free_port()
    ncx_sock = home / "ncxserver.sock"
    startup = home / "startup-cfg.xml"
    startup.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>\n'
    )
    for key in ("host_key", "client_key"):
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)],
            capture_output=True,
            timeout=START_TIMEOUT,
            check=True,
        )
    shutil.copy(home / "client_key.pub", home / "authorized_keys")
    sshd_config = home / "sshd_config"
    sshd_config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {home / 'host_key'}",
                f"PidFile {home / 'sshd.pid'}",
                f"AuthorizedKeysFile {home / 'authorized_keys'}",
                f"AllowUsers {user}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "MaxSessions 64",
                "MaxStartups 64",
                f"Subsystem netconf {SUBSYSTEM} --ncxserver-sockname={port}@{ncx_sock}",
                "",
            ]
        )
    )
    procs: list[subprocess.Popen[bytes]] = []
    txid = Path.home() / ".yuma" / "startup-cfg-txid.txt"
    with _restored(txid):  # restored after the processes below are stopped
        try:
            nd_log = workdir / "netconfd.log"
            with nd_log.open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [
                            NETCONFD,
                            f"--home={home}",
                            f"--port={port}",
                            f"--ncxserver-sockname={ncx_sock}",
                            f"--modpath={modpath}",
                            f"--module={module}",
                            f"--superuser={user}",
                            "--target=running",
                            f"--startup={startup}",
                            "--log-level=warn",
                            "--indent=0",  # replies as compact as ours: same bytes to move
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            _wait_for(ncx_sock.exists, what="netconfd", proc=procs[0], log=nd_log)
            sshd_log = workdir / "sshd.log"
            with sshd_log.open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [SSHD, "-D", "-e", "-f", str(sshd_config)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            _wait_for(lambda: _port_open(port), what="sshd", proc=procs[1], log=sshd_log)
            yield Endpoint(
                name="netconfd",
                port=port,
                user=user,
                key_file=str(home / "client_key"),
                pid=procs[0].pid,
            )
        finally:
            for proc in reversed(procs):
                stop_group(proc)
            ncx_sock.unlink(missing_ok=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def settle(pid: int | None, *, idle_share: float = 0.05, timeout: float = 120.0) -> float:
    """Wait until ``pid`` uses under ``idle_share`` of a core over 0.5 s (background work,
    such as the lifecycle deploying what a seed configured, is done); return the wait."""
    if pid is None:
        return 0.0
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < idle_share * 0.5:
            break
    return time.monotonic() - start


def netconfd_version() -> str:
    """The Debian package version of netconfd, for the report."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "netconfd"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "?"
    return out.stdout.strip() or "?"
