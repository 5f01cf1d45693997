"""Why a lifecycle step or run failed: a closed set of typed causes, and the one sentence each.

A failure is a value, not prose: each cause is a frozen dataclass carrying the facts a person
or the recovery logic needs (which connector, which VM, how many tries, what the VIM said).
The planner (a :class:`~esc_orch.model.actions.Blocked` step), the executor (a VIM error) and
the reactor (waits exhausted, no progress) build them; the deployment record keeps the last
one; and :func:`describe` renders the sentence that the escEvent ``status_message``, the log
line and opdata's ``eo:last_failure/message`` all show. Nothing else words a failure.

:class:`FailureCause` is the machine-readable name of each cause (opdata
``eo:last_failure/cause``, ``yang/esc-orch.yang`` typedef ``failure-cause``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class FailureCause(StrEnum):
    HOST_UNREACHABLE = "host-unreachable"
    DISK_HELD = "disk-held-by-another-host"
    DISK_UNFENCED = "disk-unfenced"
    CREDENTIALS_REFUSED = "credentials-refused"
    VIM_REJECTED = "vim-rejected"
    CAPACITY = "capacity"
    CAPABILITY_MISSING = "capability-missing"
    CONNECTOR_UNUSABLE = "connector-unusable"
    CONFIG_UNSATISFIABLE = "config-unsatisfiable"
    RETRIES_EXHAUSTED = "retries-exhausted"
    VM_STILL_RUNNING = "vm-still-running"
    NO_PROGRESS = "no-progress"
    STEP_LIMIT = "step-limit"
    INTERNAL = "internal-error"
    PROOF_TIMED_OUT = "proof-timed-out"
    ROLLED_BACK = "rolled-back"
    RECOVERY_FAILED = "recovery-failed"
    NOT_ALIVE_AFTER_MOVE = "not-alive-after-move"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostUnreachable:
    """A connector did not answer when a VM had to be placed (or deleted) through it."""

    cause: ClassVar[FailureCause] = FailureCause.HOST_UNREACHABLE
    connector_id: str
    vm_name: str
    deleting: bool = False
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskHeld:
    """The VM's shared disk is locked by another host of the cluster (the fence held)."""

    cause: ClassVar[FailureCause] = FailureCause.DISK_HELD
    vm_name: str
    connector_id: str
    #: The connector the VM came from, when it did not answer (it may still run the VM).
    unreachable_source: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskUnfenced:
    """The VM's disk is local to a host that does not answer: moving it could run it twice."""

    cause: ClassVar[FailureCause] = FailureCause.DISK_UNFENCED
    vm_name: str
    connector_id: str  # the unreachable host holding the disk
    storage: str = "local"


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialsRefused:
    cause: ClassVar[FailureCause] = FailureCause.CREDENTIALS_REFUSED
    connector_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VimRejected:
    """The VIM refused the request for good (bad input, conflict, ...): ``detail`` says why."""

    cause: ClassVar[FailureCause] = FailureCause.VIM_REJECTED
    what: str  # "creating dep_g_0_<uuid>"
    connector_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """The host has not enough memory, CPUs or disk for the VM."""

    cause: ClassVar[FailureCause] = FailureCause.CAPACITY
    what: str
    connector_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CapabilityMissing:
    cause: ClassVar[FailureCause] = FailureCause.CAPABILITY_MISSING
    what: str
    connector_id: str
    capability: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorUnusable:
    """The connector cannot be built from its configuration (unknown type, bad property)."""

    cause: ClassVar[FailureCause] = FailureCause.CONNECTOR_UNUSABLE
    connector_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigUnsatisfiable:
    """The configuration cannot be turned into VMs (planning-time facts; one per problem)."""

    cause: ClassVar[FailureCause] = FailureCause.CONFIG_UNSATISFIABLE
    deployment: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetriesExhausted:
    """A VIM call kept failing with temporary errors (5xx, timeouts, refused connections)."""

    cause: ClassVar[FailureCause] = FailureCause.RETRIES_EXHAUSTED
    what: str
    connector_id: str
    attempts: int
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VmStillRunning:
    cause: ClassVar[FailureCause] = FailureCause.VM_STILL_RUNNING
    vm_name: str
    connector_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoProgress:
    """The same step was planned twice in a row: the VIM did not change as it said it would."""

    cause: ClassVar[FailureCause] = FailureCause.NO_PROGRESS
    step: str  # the action's kind, e.g. "CreateVm"
    vm_name: str
    connector_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepLimit:
    cause: ClassVar[FailureCause] = FailureCause.STEP_LIMIT
    steps: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Internal:
    """A bug: the run crashed. ``detail`` is the exception."""

    cause: ClassVar[FailureCause] = FailureCause.INTERNAL
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Waited:
    """Blocked steps that did not clear after waiting: the run gives up with their causes."""

    cause: ClassVar[FailureCause] = FailureCause.HOST_UNREACHABLE
    attempts: int
    blocked: tuple[BlockedCause, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofMissing:
    """A move away from a silent host waited for proof that the old copy cannot run, in vain.

    ``explanation`` is what :func:`esc_orch.reconcile.proof.explain` said of the wait (what it
    waited for and the remedies); nothing was started on the target.
    """

    cause: ClassVar[FailureCause] = FailureCause.PROOF_TIMED_OUT
    vm_name: str
    connector_id: str  # the silent source
    waited_s: int
    explanation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RolledBack:
    """A move failed on its target and the VM was put back on its source.

    ``target_failure`` is the target's own failure (the real cause); ``restarted`` says the VM
    runs on the source again.
    """

    cause: ClassVar[FailureCause] = FailureCause.ROLLED_BACK
    vm_name: str
    connector_id: str  # the source, where the VM is again
    target_connector_id: str
    target_failure: str
    restarted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryFailed:
    """Automatic recovery of a VM gave up (VM_RECOVERY_COMPLETE FAILURE); ``problems`` say why.

    The VM stays in error until the northbound acts: a locator change, or ``recoveryVmAction DO``.
    """

    cause: ClassVar[FailureCause] = FailureCause.RECOVERY_FAILED
    vm_name: str
    connector_id: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NotAliveAfterMove:
    """A group moves one VM at a time: the VM moved last did not become alive on its target
    in time, so the next one (``next_vm``) was not stopped. ``by_kpi``: alive means its KPI
    (the monitoring's verdict), else running as the VIM reports it (an unmonitored VM)."""

    cause: ClassVar[FailureCause] = FailureCause.NOT_ALIVE_AFTER_MOVE
    vm_name: str
    connector_id: str  # the target it was moved to
    next_vm: str
    waited_s: int
    by_kpi: bool


BlockedCause = HostUnreachable | DiskUnfenced
"""What the planner may block a step on (re-observed, then the run fails with it)."""

Failure = (
    HostUnreachable
    | DiskHeld
    | DiskUnfenced
    | CredentialsRefused
    | VimRejected
    | Capacity
    | CapabilityMissing
    | ConnectorUnusable
    | ConfigUnsatisfiable
    | RetriesExhausted
    | VmStillRunning
    | NoProgress
    | StepLimit
    | Internal
    | Waited
    | ProofMissing
    | RolledBack
    | RecoveryFailed
    | NotAliveAfterMove
)
"""The closed set of failures (``describe`` handles every one; mypy checks it)."""

FAILURE_TYPES: tuple[type[Failure], ...] = (
    HostUnreachable,
    DiskHeld,
    DiskUnfenced,
    CredentialsRefused,
    VimRejected,
    Capacity,
    CapabilityMissing,
    ConnectorUnusable,
    ConfigUnsatisfiable,
    RetriesExhausted,
    VmStillRunning,
    NoProgress,
    StepLimit,
    Internal,
    Waited,
    ProofMissing,
    RolledBack,
    RecoveryFailed,
    NotAliveAfterMove,
)


def cause_of(failure: Failure) -> FailureCause:
    """The cause of ``failure``; a wait on blocked steps is the cause of its first step."""
    if isinstance(failure, Waited) and failure.blocked:
        return failure.blocked[0].cause
    return failure.cause


def describe(failure: Failure) -> str:
    """The sentence a person reads: what failed and what to do about it."""
    match failure:
        case HostUnreachable(deleting=False):
            detail = f" ({failure.detail})" if failure.detail else ""
            return (
                f"VIM connector {failure.connector_id} is unreachable{detail}: "
                f"{failure.vm_name} cannot be placed there; check the host, or point the "
                "locator at another connector"
            )
        case HostUnreachable():
            return (
                f"VIM connector {failure.connector_id} is unreachable: {failure.vm_name} "
                "cannot be deleted there; bring the host back, or remove the VM on it by hand"
            )
        case DiskHeld():
            where = (
                f" ({failure.unreachable_source} is unreachable and may still be running it): "
                "power that host off or bring it back, then send the update again"
                if failure.unreachable_source is not None
                else ": stop the VM there, then send the update again"
            )
            detail = f" ({failure.detail})" if failure.detail else ""
            return (
                f"the disk of {failure.vm_name} is still in use on another host of the "
                f"cluster{where}{detail}"
            )
        case DiskUnfenced():
            return (
                f"{failure.vm_name} ran on {failure.connector_id}, which is unreachable, and "
                f"its disk is on {failure.storage} storage, so nothing fences a second copy: "
                f"bring {failure.connector_id} back (the VM then moves), or use gluster storage"
            )
        case CredentialsRefused():
            return (
                f"VIM connector {failure.connector_id} rejected its credentials "
                f"({failure.detail}): fix the users/credentials of vim_connector "
                f"{failure.connector_id}"
            )
        case VimRejected():
            return (
                f"{failure.what} on VIM connector {failure.connector_id} failed: {failure.detail}"
            )
        case Capacity():
            return (
                f"{failure.what} on VIM connector {failure.connector_id} failed: the host has "
                f"not enough capacity ({failure.detail}): free resources there, or place the "
                "group on another connector"
            )
        case CapabilityMissing():
            return (
                f"{failure.what}: VIM connector {failure.connector_id} does not support "
                f"{failure.capability}; use a connector that declares it (e.g. with "
                "cluster_name for shared storage)"
            )
        case ConnectorUnusable():
            return (
                f"VIM connector {failure.connector_id} cannot be used ({failure.detail}): "
                "check its configuration"
            )
        case ConfigUnsatisfiable():
            listed = "; ".join(failure.problems)
            return f"deployment {failure.deployment} cannot be deployed: {listed}"
        case RetriesExhausted():
            return (
                f"{failure.what} on VIM connector {failure.connector_id} still failed after "
                f"{failure.attempts} tries ({failure.detail}): check that the host is up and "
                "reachable"
            )
        case VmStillRunning():
            return (
                f"{failure.vm_name} is still running on VIM connector {failure.connector_id} "
                "after power off: stop it on the host, then send the update again"
            )
        case NotAliveAfterMove():
            seen = (
                "its KPI did not report it alive"
                if failure.by_kpi
                else "the VIM did not report it running"
            )
            return (
                f"{failure.vm_name} was moved to VIM connector {failure.connector_id} but "
                f"{seen} within {failure.waited_s} s, so {failure.next_vm} was not moved (it "
                f"keeps running where it is): check {failure.vm_name} on "
                f"{failure.connector_id}, then send the update again"
            )
        case NoProgress():
            return (
                f"{failure.step} of {failure.vm_name} on VIM connector {failure.connector_id} "
                "had no visible effect (the VIM still reports the same state): check the host"
            )
        case StepLimit():
            return f"gave up after {failure.steps} steps"
        case Internal():
            return f"internal error: {failure.detail}"
        case Waited():
            return "; ".join(describe(b) for b in failure.blocked)
        case ProofMissing():
            return failure.explanation
        case RolledBack():
            again = "runs there again" if failure.restarted else "is back there (stopped)"
            return (
                f"moving {failure.vm_name} to VIM connector {failure.target_connector_id} "
                f"failed: {failure.target_failure}; {failure.vm_name} was put back on "
                f"{failure.connector_id} and {again}"
            )
        case RecoveryFailed():
            why = "; ".join(failure.problems) or "the VM did not come alive again"
            return (
                f"recovery of {failure.vm_name} on VIM connector {failure.connector_id} "
                f"failed ({why}): move the VM to another connector, or send recoveryVmAction "
                "DO once the host is back"
            )


def vm_of(failure: Failure) -> str | None:
    """The VM a failure is about, when it is about one."""
    match failure:
        case (
            HostUnreachable()
            | DiskHeld()
            | DiskUnfenced()
            | VmStillRunning()
            | NoProgress()
            | ProofMissing()
            | RolledBack()
            | RecoveryFailed()
            | NotAliveAfterMove()
        ):
            return failure.vm_name
        case Waited(blocked=(first, *_)):
            return first.vm_name
        case _:
            return None


def connector_of(failure: Failure) -> str | None:
    """The VIM connector a failure is about, when it is about one."""
    match failure:
        case (
            HostUnreachable()
            | DiskHeld()
            | DiskUnfenced()
            | CredentialsRefused()
            | VimRejected()
            | Capacity()
            | CapabilityMissing()
            | ConnectorUnusable()
            | RetriesExhausted()
            | VmStillRunning()
            | NoProgress()
            | ProofMissing()
            | RolledBack()
            | RecoveryFailed()
            | NotAliveAfterMove()
        ):
            return failure.connector_id
        case Waited(blocked=(first, *_)):
            return first.connector_id
        case _:
            return None
