"""ICMP echo packets as bytes, sans I/O: build a request, read a reply.

Kept apart from the socket code (:mod:`esc_orch.monitor.collectors.icmp`) so the wire format
is tested without a network: the internet checksum, the echo header (type, code, checksum,
identifier, sequence), and the two shapes a reply arrives in — with its IPv4 header on a raw
socket, without it on an unprivileged ICMP datagram socket.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ECHO_REQUEST = 8
ECHO_REPLY = 0
_HEADER = struct.Struct("!BBHHH")
#: Our payload marker: replies that do not carry it are someone else's.
MAGIC = b"esc-orch"


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(*, ident: int, seq: int, payload: bytes = MAGIC) -> bytes:
    """An ICMP echo request with a valid checksum."""
    header = _HEADER.pack(ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = checksum(header + payload)
    return _HEADER.pack(ECHO_REQUEST, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


@dataclass(frozen=True, slots=True)
class EchoReply:
    ident: int
    seq: int
    payload: bytes


def parse_reply(data: bytes, *, with_ip_header: bool) -> EchoReply | None:
    """The echo reply in ``data``, or ``None`` for anything else (requests, errors, junk)."""
    if with_ip_header:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < _HEADER.size:
        return None
    kind, code, _csum, ident, seq = _HEADER.unpack_from(data)
    if kind != ECHO_REPLY or code != 0:
        return None
    return EchoReply(ident=ident, seq=seq, payload=data[_HEADER.size :])
