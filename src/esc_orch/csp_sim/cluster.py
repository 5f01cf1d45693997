"""``esc-csp-sim cluster``: start N host processes sharing one Gluster directory.

Each host is a separate ``esc-csp-sim host`` process (so each can be SIGKILLed or SIGSTOPped on
its own); this launcher only starts them, prints where they are, and stops them all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

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


def run_cluster(args: argparse.Namespace) -> int:
    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=True)
    password_file = root / "password"
    password = write_password(password_file)
    extra: list[str] = []
    if args.tls:
        extra += ["--tls", "--cert", str(args.cert), "--key", str(args.key)]
    if args.latency_ms:
        extra += ["--latency-ms", str(args.latency_ms)]
    if args.error_rate:
        extra += ["--error-rate", str(args.error_rate)]
    procs: list[subprocess.Popen[str]] = []
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for i in range(1, args.hosts + 1):
            name = f"CSP-{i}"
            cmd = host_command(
                name=name,
                port=args.base_port + i - 1,
                root=root,
                cluster_name=args.cluster_name,
                user=args.user,
                password_file=password_file,
                extra=extra,
            )
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
            url = wait_ready(procs[-1])
            print(f"{name} {url} user={args.user} password-file={password_file}", flush=True)
        print(f"cluster {args.cluster_name} up; password: {password}", flush=True)
        while not stopping:
            signal.pause() if all(p.poll() is None for p in procs) else time.sleep(0.5)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    return 0
