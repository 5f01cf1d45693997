"""May a second copy of a VM start? Proof before a move, rollback, and stale copies — pure.

Moving a VM away from a host that does not answer is where an orchestrator either saves the
service or runs two copies on one disk. The rule here: the new copy starts only once the old
one provably cannot run — the source answers and shows the VM off (or gone); or the source was
fenced (powered off by its out-of-band controller) after it was last seen; or an operator
confirmed the host down after it was last seen; or, for a disk on the cluster's shared volume,
the disk lock can be taken (the start on the target *is* that test: a refusal with
``VimDiskInUse`` means "not yet"). Otherwise the move waits, visibly, for a bounded time.

Everything is a function of facts and the time given, so each rule is a table test; the reactor
gathers the facts, carries the decisions out and journals them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from esc_orch.fence.errors import FenceFailure
from esc_orch.fence.types import FenceProof
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.failure import Failure, FailureCause, cause_of
from esc_orch.model.vim import PowerState, Storage

# ---------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFacts:
    """What is known about the host a VM moves away from, at one observation.

    ``vm_power`` is the VM's power there when the source answers (``None``: not there).
    ``last_answered`` is when the source last answered: a fence or a confirmation older than
    that is about an earlier outage and proves nothing now. ``lock_held_at`` is when a start
    guarded by the disk lock was last refused (``VimDiskInUse``).
    """

    host: str
    answers: bool
    vm_power: PowerState | None = None
    disk_shared: bool = False
    last_answered: datetime | None = None
    fence_agent: str | None = None  # the fence agent configured for this host, if any
    fence: FenceProof | None = None
    fence_failure: FenceFailure | None = None  # the last fence attempt, when it failed
    confirmation: HostDownConfirmation | None = None
    lock_held_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofPolicy:
    """``timeout``: how long a move waits for proof before FAILURE (configurable; well under
    the 2 min 24 s a person waited before); ``lock_retry``: how soon a start refused by the disk
    lock is tried again (the holder may have died meanwhile)."""

    timeout: timedelta = timedelta(seconds=60)
    lock_retry: timedelta = timedelta(seconds=5)

    def __post_init__(self) -> None:
        if self.timeout <= timedelta(0) or self.lock_retry <= timedelta(0):
            raise ValueError("proof timeout and lock retry must be > 0")


# ---------------------------------------------------------------------------------------------
# Decisions


class ProofKind(StrEnum):
    SOURCE_CONFIRMS_OFF = "source-confirms-off"  # the source answers: VM stopped or not there
    FENCED = "fenced"
    OPERATOR_CONFIRMED = "operator-confirmed"
    DISK_LOCK = "disk-lock"  # shared disk: the target's start takes the lock, or is refused


class Unblock(StrEnum):
    """What would let a waiting move go on (shown to people, in this order of preference)."""

    BRING_HOST_BACK = "bring-host-back"  # once it answers, the VM is stopped there first
    POWER_HOST_OFF = "power-host-off"  # a dead host releases its disk lock
    CONFIRM_HOST_DOWN = "confirm-host-down"  # the operator RPC
    FIX_FENCE_AGENT = "fix-fence-agent"  # the configured agent failed for good


@dataclass(frozen=True, slots=True, kw_only=True)
class MayStart:
    """The new copy may start. ``guarded_by_lock``: only proven if the start takes the disk
    lock — a ``VimDiskInUse`` refusal is fed back as ``lock_held_at`` and the move waits."""

    proof: ProofKind
    detail: str
    guarded_by_lock: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSourceFirst:
    """The source answers and the VM may run there: power it off (and confirm), then decide
    again."""

    host: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceFirst:
    """Fence ``host`` with ``agent_id`` now; feed the proof (or failure) back."""

    host: str
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForProof:
    """Nothing proves the old copy cannot run: wait (opdata shows this) until ``deadline``,
    observing again at ``recheck_at``."""

    host: str
    waiting_since: datetime
    deadline: datetime
    recheck_at: datetime
    unblock: tuple[Unblock, ...]
    lock_held: bool = False
    fence_failure: FenceFailure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofTimedOut:
    """The wait is over: report FAILURE with the remedies (``unblock``); nothing was started."""

    host: str
    waited: timedelta
    unblock: tuple[Unblock, ...]
    lock_held: bool = False
    fence_failure: FenceFailure | None = None


ProofDecision = MayStart | StopSourceFirst | FenceFirst | WaitForProof | ProofTimedOut


def _current(at: datetime, last_answered: datetime | None) -> bool:
    return last_answered is None or at >= last_answered


def second_copy_decision(
    *,
    source: SourceFacts,
    waiting_since: datetime,
    now: datetime,
    policy: ProofPolicy = ProofPolicy(),
) -> ProofDecision:
    """Whether the VM may start on the target now, and if not, what happens next.

    ``waiting_since`` is when the move first needed proof (journaled with the move).
    """
    if source.answers:
        if source.vm_power is None or source.vm_power is PowerState.STOPPED:
            where = "is not there" if source.vm_power is None else "is stopped there"
            return MayStart(
                proof=ProofKind.SOURCE_CONFIRMS_OFF, detail=f"{source.host} answers: the VM {where}"
            )
        return StopSourceFirst(host=source.host)
    fence = source.fence
    if fence is not None and fence.host == source.host and _current(fence.at, source.last_answered):
        return MayStart(
            proof=ProofKind.FENCED,
            detail=f"{source.host} fenced by {fence.agent_id} ({fence.method}) at "
            f"{fence.at.isoformat()}",
        )
    confirmed = source.confirmation
    if (
        confirmed is not None
        and confirmed.host == source.host
        and _current(confirmed.at, source.last_answered)
    ):
        return MayStart(
            proof=ProofKind.OPERATOR_CONFIRMED,
            detail=f"{source.host} confirmed down by {confirmed.by} at {confirmed.at.isoformat()}",
        )
    failure = source.fence_failure
    if source.fence_agent is not None and (failure is None or failure.retryable):
        return FenceFirst(host=source.host, agent_id=source.fence_agent)
    lock_held = False
    recheck = now + policy.lock_retry
    if source.disk_shared:
        held_at = source.lock_held_at
        if held_at is None or now - held_at >= policy.lock_retry:
            return MayStart(
                proof=ProofKind.DISK_LOCK,
                detail=f"the disk is on shared storage: the start takes its lock only if "
                f"{source.host} no longer runs it",
                guarded_by_lock=True,
            )
        lock_held, recheck = True, held_at + policy.lock_retry
    unblock = [Unblock.BRING_HOST_BACK]
    if source.disk_shared:
        unblock.append(Unblock.POWER_HOST_OFF)
    unblock.append(Unblock.CONFIRM_HOST_DOWN)
    if failure is not None and not failure.retryable:
        unblock.append(Unblock.FIX_FENCE_AGENT)
    deadline = waiting_since + policy.timeout
    if now >= deadline:
        return ProofTimedOut(
            host=source.host,
            waited=now - waiting_since,
            unblock=tuple(unblock),
            lock_held=lock_held,
            fence_failure=failure,
        )
    return WaitForProof(
        host=source.host,
        waiting_since=waiting_since,
        deadline=deadline,
        recheck_at=min(recheck, deadline),
        unblock=tuple(unblock),
        lock_held=lock_held,
        fence_failure=failure,
    )


_UNBLOCK_TEXT = {
    Unblock.BRING_HOST_BACK: "bring {host} back (the VM is then stopped there first)",
    Unblock.POWER_HOST_OFF: "power {host} off (its disk lock is then released)",
    Unblock.CONFIRM_HOST_DOWN: "confirm that {host} is down (esc_nc_cli confirm-host-down)",
    Unblock.FIX_FENCE_AGENT: "fix the fence agent of {host}",
}


def explain(decision: WaitForProof | ProofTimedOut, *, vm: str) -> str:
    """The sentence a person reads for a waiting or timed-out move (opdata, the event)."""
    host = decision.host
    why = f"{host} does not answer and may still be running {vm}"
    if decision.lock_held:
        why += " (its disk is still locked)"
    if decision.fence_failure is not None:
        why += f"; {decision.fence_failure.summary()}"
    remedies = " or ".join(_UNBLOCK_TEXT[u].format(host=host) for u in decision.unblock)
    if isinstance(decision, ProofTimedOut):
        waited = int(decision.waited.total_seconds())
        return f"{vm} was not started elsewhere after {waited} s: {why}. To move it, {remedies}"
    left = decision.deadline.isoformat()
    return f"{vm} waits until {left} for proof that {why} cannot run it: {remedies}"


# ---------------------------------------------------------------------------------------------
# Rolling a failed move back


class TargetFailure(StrEnum):
    """Why the target could not take the VM, as far as a rollback cares."""

    CAPACITY = "capacity"  # Capacity (a VimCapacityError)
    DISK_IN_USE = "disk-in-use"  # DiskHeld / DiskUnfenced (a VimDiskInUse)
    UNREACHABLE = "unreachable"  # HostUnreachable / RetriesExhausted (temporary errors)
    REFUSED = "refused"  # any other refusal


_TARGET_FAILURES = {
    FailureCause.CAPACITY: TargetFailure.CAPACITY,
    FailureCause.DISK_HELD: TargetFailure.DISK_IN_USE,
    FailureCause.DISK_UNFENCED: TargetFailure.DISK_IN_USE,
    FailureCause.HOST_UNREACHABLE: TargetFailure.UNREACHABLE,
    FailureCause.RETRIES_EXHAUSTED: TargetFailure.UNREACHABLE,
}


def target_failure(failure: Failure) -> TargetFailure:
    """The :class:`TargetFailure` for the typed failure of the target's step (the reactor turns
    the connector's error class into that failure; this reads only its cause)."""
    return _TARGET_FAILURES.get(cause_of(failure), TargetFailure.REFUSED)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutBack:
    """Restore the VM on the source: ``remove_from_target`` (what a failed start left there,
    keeping a shared disk), then recreate it on the source (when the move had removed it
    there) or just power it on; ``restart`` False when it was stopped before the move."""

    source: str
    target: str
    remove_from_target: bool
    keep_target_disk: bool
    recreate_on_source: bool
    restart: bool
    cause: TargetFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitProofInstead:
    """Not a failed target: the disk is locked while the source is unreachable — the proof
    rule (:func:`second_copy_decision`) applies."""

    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CannotRollBack:
    """The source is unreachable: the VM runs nowhere until it answers or the move is sent
    again; report the target's failure."""

    source: str
    cause: TargetFailure


RollbackDecision = PutBack | AwaitProofInstead | CannotRollBack


def rollback_decision(
    *,
    source: str,
    target: str,
    cause: TargetFailure,
    source_answers: bool,
    vm_on_source: bool,
    target_has_copy: bool,
    disk_shared: bool,
    was_running: bool,
) -> RollbackDecision:
    """What to do when the target cannot take the VM.

    ``vm_on_source``: the VM is still defined on the source (a shared-disk move removes it
    there, disk kept, before creating it on the target; a redeploy removes it only after).
    """
    if cause is TargetFailure.DISK_IN_USE and not source_answers:
        return AwaitProofInstead(source=source)
    if not source_answers:
        return CannotRollBack(source=source, cause=cause)
    return PutBack(
        source=source,
        target=target,
        remove_from_target=target_has_copy,
        keep_target_disk=disk_shared,
        recreate_on_source=not vm_on_source,
        restart=was_running,
        cause=cause,
    )


# ---------------------------------------------------------------------------------------------
# Stale copies on a host that comes back


@dataclass(frozen=True, slots=True, kw_only=True)
class NotStale:
    """The copy is where the VM belongs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveStale:
    """Remove the copy from ``host`` before it can run: power it off first when it runs, then
    delete it, keeping the disk when it is on shared storage (it is the moved VM's disk)."""

    host: str
    power_off_first: bool
    keep_disk: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StopStale:
    """Where the VM belongs does not answer and this copy's disk is its own (local): stop it
    (``power_off`` False when it already is) and keep it until the VM is seen where it
    belongs; then it is removed."""

    host: str
    power_off: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepOnlyCopy:
    """The VM is not where it was placed: this copy is the VM (adopt it, move it again)."""

    host: str


StaleDecision = NotStale | RemoveStale | StopStale | KeepOnlyCopy


def stale_copy_decision(
    *,
    host: str,
    placed_on: str,
    copy_power: PowerState,
    copy_storage: Storage,
    placement_answers: bool,
    seen_at_placement: bool,
) -> StaleDecision:
    """A host (back from an outage) shows a VM the orchestrator placed on ``placed_on``."""
    if host == placed_on:
        return NotStale()
    running = copy_power is not PowerState.STOPPED
    shared = copy_storage is Storage.GLUSTER
    if placement_answers and not seen_at_placement:
        return KeepOnlyCopy(host=host)
    if placement_answers or shared:
        return RemoveStale(host=host, power_off_first=running, keep_disk=shared)
    return StopStale(host=host, power_off=running)
