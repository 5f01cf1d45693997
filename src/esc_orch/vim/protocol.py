"""The contract between the orchestrator and any hypervisor manager (VIM).

Every operation is async, keyword-only and idempotent where the docstring says so, so the
reactor can replay a step after a crash or a timeout without asking what happened before.
:mod:`esc_orch.vim.fake` is the executable version of these rules and
:mod:`esc_orch.testing.vim_contract` checks any connector against them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from esc_orch.vim.errors import CapabilityNotSupported
from esc_orch.vim.types import (
    Capability,
    ConnectorConfig,
    DiskCopyProgress,
    HostInfo,
    Storage,
    VmChange,
    VmSpec,
    VmState,
)

ProgressCallback = Callable[[DiskCopyProgress], None]


@runtime_checkable
class Connector(Protocol):
    """One connection to one VIM (for CSP: one host of a cluster).

    Rules every implementation follows:

    * Errors are :class:`~esc_orch.vim.errors.VimError` subclasses only, classed by what the
      caller can do (retry, give up, fix credentials, treat as absent).
    * A VM's identity is its ``name``: the same name on another host of the same cluster is the
      same VM (that is how a VM keeps its identity when it moves).
    * An operation that needs a capability the connector does not declare raises
      :class:`~esc_orch.vim.errors.CapabilityNotSupported` before any I/O.
    * Hypervisor-side names never appear in arguments, results or error classes.
    """

    @property
    def config(self) -> ConnectorConfig:
        """The configuration the connector was built from."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the connector can do beyond create/read/delete."""
        ...

    async def describe(self) -> HostInfo:
        """Facts about the host: name, address, capacity and use, storages, cluster."""
        ...

    async def list_vms(self) -> tuple[VmState, ...]:
        """Every VM the VIM knows, sorted by name."""
        ...

    async def get_vm(self, *, name: str) -> VmState:
        """The VM's observed state; :class:`VimNotFound` when it does not exist."""
        ...

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        """Create the VM (and start it) when it does not exist; return its observed state.

        Idempotent: a second call with the same name creates nothing and returns the VM as it
        is (it is not updated nor powered on: compare and act with the other operations).
        If creation fails after the VIM accepted part of it, the connector removes what it made
        before raising, so no half VM is left behind (a disk on shared storage that another
        host is using is never removed).
        Needs :attr:`Capability.SHARED_STORAGE` for a spec on shared storage, and
        :attr:`Capability.PORT_IDS` for a spec that chooses port ids (``NicSpec.port_id``);
        the VM then has exactly those port ids. The state returned (and every later
        observation) reports the port ids the VIM really has.
        A start refused for lack of memory or vCPUs raises :class:`VimCapacityError`; a disk
        locked by another host raises :class:`VimDiskInUse`.
        """
        ...

    async def delete_vm(self, *, name: str, keep_disk: bool = False) -> None:
        """Delete the VM and its disk. Idempotent: a missing VM is not an error.

        ``keep_disk`` keeps the disk file (a stale copy of a VM that moved to another host of the
        cluster on shared storage must go without its disk).
        """
        ...

    async def power_on(self, *, name: str) -> VmState:
        """Start the VM (no-op when running). Needs :attr:`Capability.POWER`.

        Raises :class:`VimDiskInUse` when the disk is in use elsewhere and
        :class:`VimCapacityError` when the host lacks memory or vCPUs for it.
        """
        ...

    async def power_off(self, *, name: str) -> VmState:
        """Stop the VM (no-op when stopped). Needs :attr:`Capability.POWER`."""
        ...

    async def reboot(self, *, name: str) -> VmState:
        """Restart a running VM in place. Needs :attr:`Capability.REBOOT`.

        A stopped VM cannot be rebooted: :class:`VimConflict`.
        """
        ...

    async def copy_disk(
        self,
        *,
        name: str,
        from_storage: Storage,
        to_storage: Storage,
        progress: ProgressCallback | None = None,
    ) -> VmState:
        """Move a stopped VM's disk to another storage; the VM then uses the new disk.

        Needs :attr:`Capability.DISK_COPY` (and :attr:`Capability.SHARED_STORAGE` when one end
        is shared). ``progress`` is called with the bytes done, ending at the total; while the
        copy runs, observations of the VM carry it too (:attr:`VmState.disk_copy`).
        Idempotent: when the VM already is on ``to_storage`` it returns at once.
        Raises :class:`VimConflict` when the VM is running.
        """
        ...

    def watch(self, *, interval: float) -> AsyncIterator[VmChange]:
        """Yield changes of the VIM's VMs: first every VM as ADDED, then each difference.

        Connectors without :attr:`Capability.EVENTS` poll every ``interval`` seconds.
        """
        ...

    async def close(self) -> None:
        """Release connections. The connector is unusable afterwards."""
        ...


def require(capabilities: frozenset[Capability], needed: Capability, *, connector: str) -> None:
    """Raise :class:`CapabilityNotSupported` unless ``needed`` is declared."""
    if needed not in capabilities:
        raise CapabilityNotSupported(needed.value, connector)
