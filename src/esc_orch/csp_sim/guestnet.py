"""The guest network: a running VM's addresses on ``lo``, only inside a sealed network namespace.

Real ICMP monitoring needs addresses that answer while a VM runs and stop answering when it
stops or its host dies. We put them on the loopback device of a private network namespace
(``unshare --net``), never anywhere else: :func:`isolation_problems` refuses a namespace that is
PID 1's, or that has any route or any interface up besides ``lo``, so no packet can leave the
machine. A guard process removes the addresses when the host process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913


class NotIsolated(RuntimeError):
    """The process is not in a private network namespace without a way out."""


def interface_flags() -> dict[str, int]:
    """Interfaces of THIS network namespace and their flags (SIOCGIFFLAGS).

    /sys/class/net is not used: sysfs shows the namespace of whoever mounted it, so inside
    ``unshare --net`` it still lists the host's interfaces.
    """
    flags: dict[str, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            req = struct.pack("16sH14x", name.encode()[:15], 0)
            res = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, req)
            flags[name] = struct.unpack("16sH14x", res)[1]
    return flags


def isolation_problems(
    proc: Path = Path("/proc"), interfaces: Callable[[], dict[str, int]] = interface_flags
) -> list[str]:
    """Why this network namespace is not safe for guest addresses (empty list: it is)."""
    problems: list[str] = []
    try:
        if os.stat(proc / "self/ns/net").st_ino == os.stat(proc / "1/ns/net").st_ino:
            problems.append("runs in the same network namespace as PID 1 (use unshare --net)")
    except PermissionError:
        pass  # PID 1 hidden from us (containers): the route and interface checks decide
    except OSError as exc:
        problems.append(f"cannot compare network namespaces: {exc}")
    try:
        routes = (proc / "net/route").read_text().splitlines()[1:]
        if any(line.strip() for line in routes):
            problems.append("has IPv4 routes in the main table")
    except OSError as exc:
        problems.append(f"cannot read IPv4 routes: {exc}")
    try:
        for line in (proc / "net/ipv6_route").read_text().splitlines():
            fields = line.split()
            if fields and fields[-1] != "lo":
                problems.append(f"has an IPv6 route via {fields[-1]}")
                break
    except FileNotFoundError:
        pass  # IPv6 disabled: nothing to route
    try:
        for name, flags in sorted(interfaces().items()):
            if name != "lo" and flags & IFF_UP:
                problems.append(f"interface {name} is up")
    except OSError as exc:
        problems.append(f"cannot list interfaces: {exc}")
    return problems


def check_isolated() -> None:
    problems = isolation_problems()
    if problems:
        raise NotIsolated(
            "refusing --guest-net netns: this process is not in a private network namespace "
            "with no route out (" + "; ".join(problems) + ")"
        )


def _host_address(text: str) -> str:
    addr = ipaddress.ip_address(text)  # ValueError on anything else: nothing reaches `ip`
    return str(addr)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=False, capture_output=True, timeout=10)


class NetnsGuest:
    """Adds and removes /32 (or /128) addresses on ``lo`` after checking isolation."""

    def __init__(self, *, record: Path) -> None:
        check_isolated()
        self.record = record
        record.parent.mkdir(parents=True, exist_ok=True)
        self.current: set[str] = set()
        self._cleanup_recorded()
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        self._guard = subprocess.Popen(
            [sys.executable, "-m", "esc_orch.csp_sim.guestnet", "guard", str(record)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def _cleanup_recorded(self) -> None:
        if self.record.exists():
            for addr in json.loads(self.record.read_text() or "[]"):
                _del(addr)
        self._write()

    def _write(self) -> None:
        tmp = self.record.with_name(f".{self.record.name}.tmp")
        tmp.write_text(json.dumps(sorted(self.current)))
        os.replace(tmp, self.record)

    def add(self, addresses: list[str]) -> None:
        for text in addresses:
            addr = _host_address(text)
            self.current.add(addr)
            self._write()  # recorded before added: the guard can always undo it
            prefix = 32 if ipaddress.ip_address(addr).version == 4 else 128
            _ip("addr", "add", f"{addr}/{prefix}", "dev", "lo")

    def remove(self, addresses: list[str]) -> None:
        for text in addresses:
            addr = _host_address(text)
            _del(addr)
            self.current.discard(addr)
        self._write()

    def close(self) -> None:
        self.remove(sorted(self.current))
        if self._guard.stdin is not None:
            self._guard.stdin.close()
        try:
            self._guard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._guard.kill()


def _del(addr: str) -> None:
    prefix = 32 if ipaddress.ip_address(addr).version == 4 else 128
    _ip("addr", "del", f"{addr}/{prefix}", "dev", "lo")


def _guard(record: Path) -> int:
    """Wait for the host to die (stdin closes), then remove what it left on ``lo``."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    if not isolation_problems() and record.exists():
        for addr in json.loads(record.read_text() or "[]"):
            _del(_host_address(addr))
        record.write_text("[]")
    return 0


if __name__ == "__main__":  # pragma: no cover - the guard process
    if len(sys.argv) == 3 and sys.argv[1] == "guard":
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise SystemExit(_guard(Path(sys.argv[2])))
    raise SystemExit("usage: python -m esc_orch.csp_sim.guestnet guard RECORD")
