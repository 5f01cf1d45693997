"""The typed steps a plan is made of, each saying which VM it touches and what it reports.

Actions are frozen values: the reactor journals them before acting, so after a crash the
intent can be read back and compared with what the VIMs show. Every action is idempotent when
repeated against the same observation (create is ``ensure_vm`` by name, delete and power are
no-ops when already done), which is what makes resuming safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from esc_orch.model.events import EventType, VmUpdateType
from esc_orch.model.failure import BlockedCause, describe
from esc_orch.model.lifecycle import VmIdentity
from esc_orch.model.vim import PowerState, Storage, VmSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The escEvent an action sends when it is done (or fails)."""

    event: EventType
    update_types: tuple[VmUpdateType, ...] = ()

    @property
    def update_type(self) -> VmUpdateType | None:
        """The one ``vm_update_type`` on the wire (the first, most significant)."""
        return self.update_types[0] if self.update_types else None


class DeleteReason(StrEnum):
    UNDEPLOY = "undeploy"  # the VM is no longer wanted
    STALE_COPY = "stale-copy"  # a copy left on a host the VM moved away from
    ORPHAN = "orphan"  # named like ours, owned by no known VM


class MigrationMode(StrEnum):
    #: Disk on the cluster volume: stop and delete the source (disk kept), then create on the
    #: target, which takes over the same disk.
    SHARED_DISK = "shared-disk"
    #: Same host, other storage: stop, copy the disk, start again.
    COPY_DISK = "copy-disk"
    #: The disk cannot follow (local to another host): stop the source, create the VM afresh
    #: on the target, then delete the source with its disk.
    REDEPLOY = "redeploy"


class SourceState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    ABSENT = "absent"  # seen nowhere: already removed from the source
    UNREACHABLE = "unreachable"  # the source host does not answer: fenced by the disk lock


_DEPLOYED = Report(event=EventType.VM_DEPLOYED)
_UNDEPLOYED = Report(event=EventType.VM_UNDEPLOYED)
_LOCATOR = Report(event=EventType.VM_UPDATED, update_types=(VmUpdateType.LOCATOR_UPDATED,))


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateVm:
    vm: VmIdentity
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    report: Report = _DEPLOYED


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteVm:
    vm: VmIdentity
    connector_id: str
    keep_disk: bool
    reason: DeleteReason
    report: Report | None = _UNDEPLOYED


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerOn:
    vm: VmIdentity
    connector_id: str
    report: Report | None = Report(event=EventType.VM_STARTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerOff:
    vm: VmIdentity
    connector_id: str
    report: Report | None = Report(event=EventType.VM_STOPPED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reboot:
    vm: VmIdentity
    connector_id: str
    report: Report | None = Report(event=EventType.VM_REBOOTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecreateVm:
    """Delete and create again under the same identity: what the VIM cannot change in place."""

    vm: VmIdentity
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    keep_disk: bool
    report: Report


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrateVm:
    """Move a VM to ``connector_id`` (another host, or another storage on the same host)."""

    vm: VmIdentity
    source_connector_id: str
    source: SourceState
    source_storage: Storage
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    mode: MigrationMode
    report: Report = _LOCATOR


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptSpec:
    """Nothing to do on the VIM; record the new spec (and placement) as applied."""

    vm: VmIdentity
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    report: Report | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceHost:
    """Power off the silent source host of a move through its fence agent, and prove it.

    Never planned: the reactor takes it when :func:`esc_orch.reconcile.proof
    .second_copy_decision` says ``FenceFirst``, and journals it as a step of its own (so a crash
    mid-fence is visible and the fence is asked again: fencing is idempotent).
    """

    vm: VmIdentity
    connector_id: str  # the source connector whose host is fenced
    agent_id: str
    host: str
    report: Report | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocked:
    """Cannot proceed now; ``failure`` says why. Re-observed, then the run fails with it."""

    vm: VmIdentity
    connector_id: str
    failure: BlockedCause
    report: Report | None = None

    @property
    def reason(self) -> str:
        """The sentence a person reads (:func:`esc_orch.model.failure.describe`)."""
        return describe(self.failure)


Action = (
    CreateVm
    | DeleteVm
    | PowerOn
    | PowerOff
    | Reboot
    | RecreateVm
    | MigrateVm
    | AcceptSpec
    | FenceHost
    | Blocked
)


def source_power(power: PowerState) -> SourceState:
    return SourceState.RUNNING if power is PowerState.RUNNING else SourceState.STOPPED


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What to do next, in order; ``done`` when there is nothing left."""

    actions: tuple[Action, ...] = ()
    #: Facts for people that need no action now (e.g. a stale copy may remain on a dead host).
    notes: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return not self.actions

    @property
    def runnable(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not isinstance(a, Blocked))

    @property
    def blocked(self) -> tuple[Blocked, ...]:
        return tuple(a for a in self.actions if isinstance(a, Blocked))
