"""Where probes may go: ``[monitor] allowed_networks`` of the daemon's TOML.

In production the collector pings the VMs' real addresses; in this repository's tests, benches
and demo nothing may leave 127.0.0.0/8 except inside a private network namespace. The daemon's
configuration therefore lists the prefixes a probe may target (default ``["127.0.0.0/8"]``);
:func:`check_target` is the one check, used by the collectors before any packet is sent and
by the edit-time validator (a payload whose interface address is outside is refused).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED_NETWORKS: tuple[str, ...] = ("127.0.0.0/8",)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetRefused:
    """A probe target outside the allowed networks (or not an address at all)."""

    address: str
    allowed: tuple[str, ...]
    problem: str

    def __str__(self) -> str:
        return f"monitoring target {self.address!r} refused: {self.problem}"


@dataclass(frozen=True, slots=True)
class AllowedNetworks:
    networks: tuple[IpNetwork, ...]

    @classmethod
    def parse(cls, prefixes: Iterable[str]) -> AllowedNetworks:
        """From CIDR strings; raises ``ValueError`` naming the bad one."""
        out = []
        for text in prefixes:
            try:
                out.append(ipaddress.ip_network(str(text).strip(), strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"allowed_networks: {text!r} is not a CIDR prefix ({exc})"
                ) from None
        return cls(tuple(out))

    @classmethod
    def default(cls) -> AllowedNetworks:
        return cls.parse(DEFAULT_ALLOWED_NETWORKS)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(str(n) for n in self.networks)

    def check(self, address: str) -> TargetRefused | None:
        return check_target(address, self)


def check_target(address: str, allowed: AllowedNetworks) -> TargetRefused | None:
    """``None`` when ``address`` may be probed; else why not."""
    try:
        addr = ipaddress.ip_address(address.strip())
    except ValueError:
        return TargetRefused(address=address, allowed=allowed.texts, problem="not an IP address")
    if any(addr.version == n.version and addr in n for n in allowed.networks):
        return None
    shown = ", ".join(allowed.texts) or "none"
    return TargetRefused(
        address=address,
        allowed=allowed.texts,
        problem=f"outside [monitor] allowed_networks ({shown})",
    )
