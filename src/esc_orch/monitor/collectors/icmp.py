"""ICMPPing: real ICMP echo to every monitored address, multiplexed on ONE socket.

Thousands of VMs polled every 15 s must not cost a process or a socket each. One
:class:`IcmpSocket` serves every probe: a raw ICMP socket when we are root (with the kernel's
``ICMP_FILTER`` so only echo replies wake us), an unprivileged ICMP datagram socket otherwise
(``net.ipv4.ping_group_range``). Each probe has its own sequence number; a reply is matched by
(source address, sequence), by our identifier on a raw socket (the kernel does it on a
datagram one) and by our payload marker, and counts only within its own timeout. Sends go out
in slices that yield to the event loop, so the reader drains replies while thousands are sent.

The KPI value is the percentage of answered probes (``count`` probes per poll, default 1), so
ESC's ``metric_value 50`` / ``GT`` means "answered". Targets outside ``[monitor]
allowed_networks`` are refused (an error sample, logged once per address): no packet goes
there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import random
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from esc_orch.monitor.collectors.protocol import CollectorContext
from esc_orch.monitor.icmp_wire import ECHO_REPLY, MAGIC, echo_request, parse_reply
from esc_orch.monitor.targets import check_target
from esc_orch.monitor.types import MetricKind, Sample, Target

log = logging.getLogger(__name__)

SOL_RAW = 255
ICMP_FILTER = 1
_SLICE = 256  # sends between two yields to the loop


class IcmpMode(StrEnum):
    AUTO = "auto"  # raw as root, datagram otherwise
    RAW = "raw"
    DGRAM = "dgram"


@dataclass(slots=True)
class _Batch:
    timeout: float
    answered: dict[str, int] = field(default_factory=dict)
    outstanding: int = 0
    sending: bool = True
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def settle(self) -> None:
        if self.outstanding == 0 and not self.sending:
            self.done.set()


class IcmpSocket:
    """One ICMP socket for every probe of the process (open it inside the running loop)."""

    def __init__(self, *, mode: IcmpMode = IcmpMode.AUTO, rcvbuf: int = 4 << 20) -> None:
        self.mode = mode
        self.rcvbuf = rcvbuf
        self.raw = False
        self.ident = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[tuple[str, int], tuple[_Batch, float]] = {}
        self._seq = random.getrandbits(16)
        self.sent = 0
        self.received = 0

    def _make(self, raw: bool) -> socket.socket:
        kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            if raw:
                block = ~(1 << ECHO_REPLY) & 0xFFFFFFFF  # wake us for echo replies only
                sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", block))
                self.ident = random.getrandbits(16)
            else:
                sock.bind(("0.0.0.0", 0))
                self.ident = sock.getsockname()[1]  # the kernel rewrites the identifier
        except BaseException:
            sock.close()
            raise
        return sock

    def open(self) -> None:
        if self._sock is not None:
            return
        order = {
            IcmpMode.RAW: [True],
            IcmpMode.DGRAM: [False],
            IcmpMode.AUTO: [True, False] if os.geteuid() == 0 else [False, True],
        }[self.mode]
        errors: list[str] = []
        for raw in order:
            try:
                self._sock = self._make(raw)
            except OSError as exc:
                errors.append(f"{'raw' if raw else 'datagram'}: {exc}")
                continue
            self.raw = raw
            break
        if self._sock is None:
            raise OSError("cannot open an ICMP socket (" + "; ".join(errors) + ")")
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        for batch, _ in self._pending.values():
            batch.outstanding = 0
            batch.settle()
        self._pending.clear()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        now = time.monotonic()
        errors = 0
        while True:
            try:
                data, src = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # a queued ICMP error for one destination (datagram sockets): not a reply;
                # bounded, so a socket in a lasting error state cannot hold the loop
                errors += 1
                if errors > 64:
                    return
                continue
            reply = parse_reply(data, with_ip_header=self.raw)
            if reply is None or not reply.payload.startswith(MAGIC):
                continue
            if self.raw and reply.ident != self.ident:
                continue  # another process's ping
            entry = self._pending.pop((src[0], reply.seq), None)
            if entry is None:
                continue
            batch, sent_at = entry
            self.received += 1
            batch.outstanding -= 1
            if now - sent_at <= batch.timeout:
                batch.answered[src[0]] = batch.answered.get(src[0], 0) + 1
            batch.settle()

    def _next_seq(self, address: str) -> int:
        for _ in range(0x10000):
            self._seq = (self._seq + 1) & 0xFFFF
            if (address, self._seq) not in self._pending:
                return self._seq
        raise RuntimeError("65536 probes to one address outstanding")

    async def _send(self, packet: bytes, address: str) -> bool:
        full = 0
        while True:
            if self._sock is None or self._loop is None:
                return False  # closed meanwhile
            try:
                self._sock.sendto(packet, (address, 0))
                return True
            except (BlockingIOError, InterruptedError):
                ready = self._loop.create_future()
                fd = self._sock.fileno()
                self._loop.add_writer(fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    self._loop.remove_writer(fd)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS and full < 20:
                    full += 1  # the device queue is full: give it a moment, do not drop
                    await asyncio.sleep(0.001)
                    continue
                return False  # no route, unreachable...: unanswered

    async def ping(self, addresses: Sequence[str], *, probe_timeout: float) -> dict[str, int]:
        """One echo to each address (repeats allowed); answers per address, each in time."""
        self.open()
        batch = _Batch(timeout=probe_timeout)
        keys: list[tuple[str, int]] = []
        try:
            for i, address in enumerate(addresses):
                seq = self._next_seq(address)
                key = (address, seq)
                self._pending[key] = (batch, time.monotonic())
                batch.outstanding += 1
                keys.append(key)
                if await self._send(echo_request(ident=self.ident, seq=seq), address):
                    self.sent += 1
                elif self._pending.pop(key, None) is not None:
                    batch.outstanding -= 1
                if i % _SLICE == _SLICE - 1:
                    await asyncio.sleep(0)
            batch.sending = False
            batch.settle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.done.wait(), probe_timeout)
        finally:
            for key in keys:
                self._pending.pop(key, None)
        return batch.answered


def _number(props: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(props.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class IcmpCollector:
    """The ``ICMPPing`` collector (entry point ``esc_orch.collectors``)."""

    type_name = "ICMPPing"
    kind = MetricKind.THRESHOLD

    def __init__(self, *, context: CollectorContext | None = None) -> None:
        self._context = context or CollectorContext()
        self._socket = IcmpSocket(mode=IcmpMode(self._context.settings.get("mode", "auto")))
        self._verdicts: dict[str, str | None] = {}  # address -> why refused (None: allowed)

    @property
    def socket(self) -> IcmpSocket:
        return self._socket

    def _refuse(self, target: Target) -> str | None:
        if target.address is None:
            return "no address to ping (the KPI's nicid names no interface with an ip_address)"
        address = target.address
        if address in self._verdicts:
            verdict = self._verdicts[address]
        else:
            verdict = self._verdicts[address] = self._verdict(target)
        return verdict

    def _verdict(self, target: Target) -> str | None:
        assert target.address is not None
        refused = check_target(target.address, self._context.allowed)
        if refused is not None:
            log.warning("ICMPPing: %s (VM %s)", refused, target.vm_name)  # once: cached
            return str(refused)
        if ipaddress.ip_address(target.address).version != 4:
            return "ICMPPing probes IPv4 addresses only"
        return None

    async def collect(self, targets: Sequence[Target]) -> Mapping[str, Sample]:
        out: dict[str, Sample] = {}
        groups: dict[tuple[int, float], list[Target]] = {}
        for target in targets:
            problem = self._refuse(target)
            if problem is not None:
                out[target.key] = Sample(error=problem)
                continue
            count = int(_number(target.properties, "count", 1))
            timeout = _number(target.properties, "timeout", 1.0)
            groups.setdefault((count, timeout), []).append(target)
        for (count, timeout), group in groups.items():
            answered: dict[str, int] = {}
            try:
                for _ in range(count):
                    addrs = [t.address for t in group if t.address is not None]
                    got = await self._socket.ping(addrs, probe_timeout=timeout)
                    for addr, n in got.items():
                        answered[addr] = answered.get(addr, 0) + n
            except OSError as exc:
                for t in group:
                    out[t.key] = Sample(error=str(exc))
                continue
            per_address: dict[str, int] = {}
            for t in group:
                assert t.address is not None
                per_address[t.address] = per_address.get(t.address, 0) + 1
            for t in group:
                assert t.address is not None
                # the same address twice in a batch: its answers are shared out evenly
                share = answered.get(t.address, 0) / per_address[t.address]
                out[t.key] = Sample(value=round(100.0 * min(share, count) / count, 3))
        return out

    async def aclose(self) -> None:
        self._socket.close()
