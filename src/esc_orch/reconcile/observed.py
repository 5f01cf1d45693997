"""What the planner knows of the world: what each connector reports, plus our own memory.

A view per VIM connector says whether it answered, which host is behind it (two connectors may
reach the same host, as in the seed's scenario 3) and the VMs it runs. An unreachable connector
is not "empty": what it runs is unknown, and the planner must not assume its VMs are gone.
``applied`` is the orchestrator's memory (opdata): where each VM was last placed and with which
spec. It tells a move from a fresh deploy when the VM is seen nowhere, and carries the settings
a VIM does not report back (VLANs, day-0, serial ports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from esc_orch.model.lifecycle import AppliedVm
from esc_orch.model.vim import Storage, VmState

__all__ = ["AppliedVm", "ConnectorView", "Copy", "Observation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorView:
    """One connector's answer: ``reachable`` False means its VMs are unknown."""

    connector_id: str
    reachable: bool
    host: str | None = None  # HostInfo.name; two connectors on one host see the same VMs
    storages: tuple[Storage, ...] = ()
    vms: tuple[VmState, ...] = ()
    detail: str | None = None  # why it is unreachable, for people

    @property
    def host_key(self) -> str:
        """The physical host, or a stand-in unique to the connector when it is unknown."""
        return self.host if self.host is not None else f"connector:{self.connector_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    """One VM as one reachable connector reports it."""

    connector_id: str
    host: str
    state: VmState


@dataclass(frozen=True, kw_only=True)
class Observation:
    views: tuple[ConnectorView, ...]
    applied: Mapping[str, AppliedVm] = field(default_factory=dict)
    #: Names owned by other deployments (same deployment name in another tenant): never touched.
    foreign: frozenset[str] = frozenset()

    def view(self, connector_id: str) -> ConnectorView | None:
        return next((v for v in self.views if v.connector_id == connector_id), None)

    def reachable(self, connector_id: str) -> bool:
        view = self.view(connector_id)
        return view is not None and view.reachable

    def copies(self, name: str) -> tuple[Copy, ...]:
        """Every sighting of ``name`` on reachable connectors (a host may appear twice)."""
        return tuple(
            Copy(connector_id=v.connector_id, host=v.host_key, state=s)
            for v in self.views
            if v.reachable
            for s in v.vms
            if s.name == name
        )

    def names(self) -> frozenset[str]:
        return frozenset(s.name for v in self.views if v.reachable for s in v.vms)
