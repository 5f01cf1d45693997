"""The vocabulary of fence agents: configuration, power status, and the proof a fence gives.

Fencing is what lets a move start a second copy of a VM while its old host does not answer:
only once that host is provably powered off may the VM run elsewhere. A :class:`FenceProof` is
that fact as a value (who fenced which host, how, when), to be journaled and shown to people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from esc_orch.model.vim import Credentials


class HostPower(StrEnum):
    """A host's power as its out-of-band controller reports it."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class FenceMethod(StrEnum):
    """How the proof was obtained."""

    POWER_OFF = "power-off"  # the agent cut the host's power and read it back off
    ALREADY_OFF = "already-off"  # the controller reported the host off before any action


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceAgentConfig:
    """One configured fence agent (for one host, as a BMC is): type, properties, credentials.

    ``properties`` are the agent's settings by name, e.g. for the emulator's power controller:
    ``url``, ``timeout``.
    """

    id: str
    type: str
    properties: Mapping[str, str] = field(default_factory=dict)
    credentials: Credentials | None = None

    def prop(self, name: str, default: str | None = None) -> str | None:
        return self.properties.get(name, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceStatus:
    host: str
    power: HostPower


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceProof:
    """``host`` is powered off: the evidence a second copy of its VMs may start elsewhere."""

    host: str
    agent_id: str
    agent_type: str
    method: FenceMethod
    at: datetime  # when the power was read back off (UTC)
    detail: str = ""
