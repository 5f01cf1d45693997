"""The deployment record: everything the orchestrator knows of one deployment, as one value.

One immutable record per deployment, with one :class:`VmRecord` per VM inside it: identities,
placement and the spec last applied, lifecycle states, what the VIM last showed, the VMs
wanted off or unmonitored, the last failure and the step in flight. The reactor produces the
next record with each step (``replace``, never mutation); the store persists exactly that value
(``lifecycle_state.record``); the daemon resumes from it and opdata is rendered from it. A new
fact about a deployment is one new field here, and nothing re-derives it elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from esc_orch.model.actions import Report
from esc_orch.model.failure import Failure, FailureCause, cause_of, describe
from esc_orch.model.lifecycle import (
    AppliedVm,
    DeploymentState,
    LifecycleOperation,
    VmIdentity,
    VmLifecycleState,
)
from esc_orch.model.vim import VmState


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureNote:
    """A failure and when it happened (opdata ``eo:last_failure``)."""

    failure: Failure
    at: datetime

    @property
    def cause(self) -> FailureCause:
        return cause_of(self.failure)

    @property
    def message(self) -> str:
        return describe(self.failure)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepInFlight:
    """The step journaled and not finished yet (opdata ``eo:current_step``)."""

    step_id: str
    action: str  # the action's kind: CreateVm, MigrateVm, ...
    vm_name: str
    connector_id: str
    started: datetime
    #: A move waiting for proof (or a step in progress): what it waits for and what unblocks
    #: it, or its progress (e.g. disk copy bytes), in the words a person reads.
    detail: str | None = None
    #: A disk copy in progress (scenario 3, local -> gluster): bytes done of the total.
    bytes_done: int | None = None
    bytes_total: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VmRecord:
    identity: VmIdentity
    state: VmLifecycleState = VmLifecycleState.UNDEF
    #: What the orchestrator last put on a VIM for this VM (placement and spec).
    applied: AppliedVm | None = None
    #: The connector that last showed the VM, and how it showed it.
    seen_on: str | None = None
    observed: VmState | None = None
    #: VM_ALIVE was sent (once per VM).
    alive: bool = False
    #: Wanted powered off (vmAction/serviceAction STOP); survives restarts and updates.
    wanted_off: bool = False
    #: Monitoring disabled (vmAction DISABLE_MONITOR).
    unmonitored: bool = False
    #: Wanted rebooted once (vmAction/serviceAction REBOOT accepted, reboot not done yet).
    wanted_reboot: bool = False
    #: The event of a step a crash cut (its intent found open): owed until it is logged.
    owed: Report | None = None
    last_failure: FailureNote | None = None
    #: Connectors that did not answer when the VM moved away from them: a stale copy may
    #: remain there, so they are observed until they answer without it (then it is removed).
    left_on: tuple[str, ...] = ()
    #: The state the recovery policy puts the VM in (RECOVERING while it runs, ERROR after
    #: it gave up), shown over the lifecycle's until the recovery ends or the northbound acts.
    recovery: VmLifecycleState | None = None
    #: When the VM was last created, started, rebooted or moved (its monitoring's boot time).
    booted_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def connector_id(self) -> str | None:
        """Where the orchestrator placed the VM (``None`` before it was)."""
        return self.applied.connector_id if self.applied is not None else None

    @property
    def vim_project(self) -> str | None:
        return self.applied.vim_project if self.applied is not None else None

    @property
    def shown_state(self) -> VmLifecycleState:
        """The state opdata shows: a recovery's state first; an alive VM with monitoring off
        is MONITOR_DISABLED."""
        if self.recovery is not None:
            return self.recovery
        if self.unmonitored and self.state is VmLifecycleState.ALIVE:
            return VmLifecycleState.MONITOR_DISABLED
        return self.state


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentRecord:
    tenant: str
    name: str
    depid: str
    state: DeploymentState = DeploymentState.INERT
    #: One entry per VM, sorted by name.
    vms: tuple[VmRecord, ...] = ()
    #: A deploy or update of it completed once (later runs are updates).
    ever_active: bool = False
    #: A run that started (an intent was written) and has not ended yet (no service event).
    run: LifecycleOperation | None = None
    step: StepInFlight | None = None
    last_failure: FailureNote | None = None
    #: A serviceAction (START/STOP/REBOOT) accepted whose SERVICE_* event is not logged yet.
    owed_service_action: str | None = None
    #: The deploy run ended before the monitor saw every VM alive: SERVICE_ALIVE is sent by
    #: the monitor when the last one is (VM_ALIVE comes from the KPI, not the run).
    alive_owed: bool = False
    #: An action's run (vmAction/serviceAction START/STOP/REBOOT) accepted and not finished:
    #: a restart finishes it quietly (the action sends its own events, no SERVICE_UPDATED).
    quiet_run: bool = False
    #: The newest configuration transaction (txid) whose service event is logged: the store
    #: settles the commits' owed service events up to it (``lifecycle_owed_run``).
    settled_txid: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.name)

    def vm(self, name: str) -> VmRecord | None:
        return next((v for v in self.vms if v.identity.name == name), None)

    def names(self) -> frozenset[str]:
        return frozenset(v.identity.name for v in self.vms)

    def identities(self) -> tuple[VmIdentity, ...]:
        return tuple(v.identity for v in self.vms)

    def wanted_off(self) -> frozenset[str]:
        return frozenset(v.identity.name for v in self.vms if v.wanted_off)

    def unmonitored(self) -> frozenset[str]:
        return frozenset(v.identity.name for v in self.vms if v.unmonitored)

    def wanted_reboot(self) -> frozenset[str]:
        return frozenset(v.identity.name for v in self.vms if v.wanted_reboot)

    def alive(self) -> frozenset[str]:
        return frozenset(v.identity.name for v in self.vms if v.alive)

    def with_identity(self, identity: VmIdentity) -> DeploymentRecord:
        """The record knowing ``identity`` (a known VM keeps its entry)."""
        if self.vm(identity.name) is not None:
            return self
        return self._with_vms((*self.vms, VmRecord(identity=identity)))

    def with_vm(self, name: str, **changes: Any) -> DeploymentRecord:
        """The record with VM ``name``'s entry changed (a VM not known is left out)."""
        return self._with_vms(
            tuple(replace(v, **changes) if v.identity.name == name else v for v in self.vms)
        )

    def with_vms(self, names: Iterable[str], **changes: Any) -> DeploymentRecord:
        wanted = set(names)
        return self._with_vms(
            tuple(replace(v, **changes) if v.identity.name in wanted else v for v in self.vms)
        )

    def without_vm(self, name: str) -> DeploymentRecord:
        return self._with_vms(tuple(v for v in self.vms if v.identity.name != name))

    def _with_vms(self, vms: tuple[VmRecord, ...]) -> DeploymentRecord:
        return replace(self, vms=tuple(sorted(vms, key=lambda v: v.identity.name)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Undeployed:
    """The deployment is gone (its record is deleted with the event that says so)."""

    tenant: str
    name: str
    #: As :attr:`DeploymentRecord.settled_txid`: the commits whose service event this is.
    settled_txid: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.name)


RecordChange = DeploymentRecord | Undeployed
