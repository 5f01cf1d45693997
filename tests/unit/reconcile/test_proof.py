"""Proof before a second copy starts, rollback of a failed move, stale copies: table tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from esc_orch.fence.errors import FenceFailure, FenceFailureKind
from esc_orch.fence.types import FenceMethod, FenceProof
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.failure import (
    Capacity,
    DiskHeld,
    Failure,
    HostUnreachable,
    RetriesExhausted,
    VimRejected,
)
from esc_orch.model.vim import PowerState, Storage
from esc_orch.reconcile.proof import (
    AwaitProofInstead,
    CannotRollBack,
    FenceFirst,
    KeepOnlyCopy,
    MayStart,
    NotStale,
    ProofKind,
    ProofPolicy,
    ProofTimedOut,
    PutBack,
    RemoveStale,
    SourceFacts,
    StopSourceFirst,
    StopStale,
    TargetFailure,
    Unblock,
    WaitForProof,
    explain,
    rollback_decision,
    second_copy_decision,
    stale_copy_decision,
    target_failure,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SEEN = T0 - timedelta(seconds=30)  # the source last answered 30 s before the move
POLICY = ProofPolicy(timeout=timedelta(seconds=60), lock_retry=timedelta(seconds=5))
DOWN = SourceFacts(host="CSP-1", answers=False, last_answered=SEEN)


def _proof(at: datetime, host: str = "CSP-1") -> FenceProof:
    return FenceProof(
        host=host, agent_id="power-CSP-1", agent_type="FAKE", method=FenceMethod.POWER_OFF, at=at
    )


def _failure(kind: FenceFailureKind) -> FenceFailure:
    return FenceFailure(kind=kind, agent_id="power-CSP-1", host="CSP-1", detail="x")


def _decide(source: SourceFacts, *, after: float = 0.0) -> object:
    return second_copy_decision(
        source=source, waiting_since=T0, now=T0 + timedelta(seconds=after), policy=POLICY
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # The source answers: its word decides.
        (replace(DOWN, answers=True, vm_power=PowerState.STOPPED), ProofKind.SOURCE_CONFIRMS_OFF),
        (replace(DOWN, answers=True, vm_power=None), ProofKind.SOURCE_CONFIRMS_OFF),
        # Fenced or confirmed after it was last seen.
        (replace(DOWN, fence=_proof(T0)), ProofKind.FENCED),
        (
            replace(DOWN, confirmation=HostDownConfirmation(host="CSP-1", by="admin", at=T0)),
            ProofKind.OPERATOR_CONFIRMED,
        ),
        # Shared disk, nobody refused yet: try the start, guarded by the lock.
        (replace(DOWN, disk_shared=True), ProofKind.DISK_LOCK),
    ],
)
def test_what_proves_the_old_copy_cannot_run(source: SourceFacts, expected: ProofKind) -> None:
    decision = _decide(source)
    assert isinstance(decision, MayStart) and decision.proof is expected
    assert decision.guarded_by_lock is (expected is ProofKind.DISK_LOCK)


@pytest.mark.parametrize("power", [PowerState.RUNNING, PowerState.ERROR, PowerState.UNKNOWN])
def test_a_source_that_answers_with_the_vm_not_stopped_stops_it_first(power: PowerState) -> None:
    decision = _decide(replace(DOWN, answers=True, vm_power=power, fence=_proof(T0)))
    assert decision == StopSourceFirst(host="CSP-1")


@pytest.mark.parametrize(
    "source",
    [
        replace(DOWN, fence=_proof(SEEN - timedelta(seconds=1))),  # fenced before it came back
        replace(DOWN, fence=_proof(T0, host="CSP-2")),  # another host's proof
        replace(
            DOWN,
            confirmation=HostDownConfirmation(host="CSP-1", by="admin", at=SEEN - timedelta(1)),
        ),
        replace(DOWN, confirmation=HostDownConfirmation(host="CSP-2", by="admin", at=T0)),
    ],
)
def test_stale_or_foreign_evidence_proves_nothing(source: SourceFacts) -> None:
    decision = _decide(source)
    assert isinstance(decision, WaitForProof)


def test_a_configured_fence_agent_is_used_first_and_retried_while_retryable() -> None:
    agent = replace(DOWN, fence_agent="power-CSP-1", disk_shared=True)
    assert _decide(agent) == FenceFirst(host="CSP-1", agent_id="power-CSP-1")
    retry = replace(agent, fence_failure=_failure(FenceFailureKind.UNREACHABLE))
    assert _decide(retry) == FenceFirst(host="CSP-1", agent_id="power-CSP-1")
    # Once fenced, the proof decides.
    fenced = _decide(replace(agent, fence=_proof(T0)))
    assert isinstance(fenced, MayStart) and fenced.proof is ProofKind.FENCED


def test_a_fence_agent_that_fails_for_good_is_not_called_again_and_is_named() -> None:
    broken = replace(DOWN, fence_agent="power-CSP-1", fence_failure=_failure(FenceFailureKind.AUTH))
    decision = _decide(broken, after=10)
    assert isinstance(decision, WaitForProof)
    assert Unblock.FIX_FENCE_AGENT in decision.unblock
    assert decision.fence_failure is not None
    assert "auth" in explain(decision, vm="vm1")


def test_a_lock_refusal_waits_and_the_start_is_tried_again_after_lock_retry() -> None:
    held = replace(DOWN, disk_shared=True, lock_held_at=T0 + timedelta(seconds=1))
    waiting = _decide(held, after=3)
    assert isinstance(waiting, WaitForProof) and waiting.lock_held
    assert waiting.recheck_at == T0 + timedelta(seconds=6)
    assert waiting.unblock == (
        Unblock.BRING_HOST_BACK,
        Unblock.POWER_HOST_OFF,
        Unblock.CONFIRM_HOST_DOWN,
    )
    again = _decide(held, after=6)
    assert isinstance(again, MayStart) and again.guarded_by_lock


def test_without_proof_the_wait_is_bounded_by_the_policy() -> None:
    local = replace(DOWN, disk_shared=False)  # a local disk: the lock proves nothing
    waiting = _decide(local, after=59)
    assert isinstance(waiting, WaitForProof)
    assert waiting.deadline == T0 + timedelta(seconds=60)
    assert waiting.recheck_at <= waiting.deadline
    assert Unblock.POWER_HOST_OFF not in waiting.unblock
    over = _decide(local, after=60)
    assert isinstance(over, ProofTimedOut) and over.waited == timedelta(seconds=60)
    text = explain(over, vm="vm1")
    assert "after 60 s" in text and "confirm-host-down" in text and "bring CSP-1 back" in text


def test_the_timeout_is_configurable() -> None:
    short = ProofPolicy(timeout=timedelta(seconds=10))
    decision = second_copy_decision(
        source=DOWN, waiting_since=T0, now=T0 + timedelta(seconds=10), policy=short
    )
    assert isinstance(decision, ProofTimedOut)
    with pytest.raises(ValueError):
        ProofPolicy(timeout=timedelta(0))


@pytest.mark.parametrize(
    "case",
    [
        # Capacity refused on the target, shared-disk move (source definition already gone).
        (TargetFailure.CAPACITY, True, False, False, True, True,
         PutBack(source="CSP-1", target="CSP-2", remove_from_target=False, keep_target_disk=True,
                 recreate_on_source=True, restart=True, cause=TargetFailure.CAPACITY)),
        # Redeploy: the source still has the VM (stopped); the target kept a failed copy.
        (TargetFailure.REFUSED, True, True, True, False, True,
         PutBack(source="CSP-1", target="CSP-2", remove_from_target=True, keep_target_disk=False,
                 recreate_on_source=False, restart=True, cause=TargetFailure.REFUSED)),
        # A VM that was stopped before the move is put back stopped.
        (TargetFailure.UNREACHABLE, True, True, False, True, False,
         PutBack(source="CSP-1", target="CSP-2", remove_from_target=False, keep_target_disk=True,
                 recreate_on_source=False, restart=False, cause=TargetFailure.UNREACHABLE)),
        # Source gone: nothing to put back onto.
        (TargetFailure.CAPACITY, False, False, False, True, True,
         CannotRollBack(source="CSP-1", cause=TargetFailure.CAPACITY)),
        # Disk locked while the source is unreachable: the proof rule, not a rollback.
        (TargetFailure.DISK_IN_USE, False, False, False, True, True,
         AwaitProofInstead(source="CSP-1")),
    ],
)  # fmt: skip
def test_rollback_of_a_failed_move(case: tuple[object, ...]) -> None:
    cause, answers, on_source, on_target, shared, running, expected = case
    assert isinstance(cause, TargetFailure)
    decision = rollback_decision(
        source="CSP-1",
        target="CSP-2",
        cause=cause,
        source_answers=bool(answers),
        vm_on_source=bool(on_source),
        target_has_copy=bool(on_target),
        disk_shared=bool(shared),
        was_running=bool(running),
    )
    assert decision == expected


@pytest.mark.parametrize(
    "case",
    [
        ("CSP-2", PowerState.RUNNING, Storage.GLUSTER, True, True, NotStale()),
        # Back with a copy of a VM that moved to CSP-2: removed, the shared disk kept.
        ("CSP-1", PowerState.STOPPED, Storage.GLUSTER, True, True,
         RemoveStale(host="CSP-1", power_off_first=False, keep_disk=True)),
        # ... and if it already started it (the moved VM was stopped): stopped first.
        ("CSP-1", PowerState.RUNNING, Storage.GLUSTER, True, True,
         RemoveStale(host="CSP-1", power_off_first=True, keep_disk=True)),
        ("CSP-1", PowerState.ERROR, Storage.GLUSTER, True, True,
         RemoveStale(host="CSP-1", power_off_first=True, keep_disk=True)),
        # A redeployed VM: the stale copy's local disk is its own and goes with it.
        ("CSP-1", PowerState.RUNNING, Storage.LOCAL, True, True,
         RemoveStale(host="CSP-1", power_off_first=True, keep_disk=False)),
        # The placement does not answer: a shared-disk copy still goes (nothing is lost) ...
        ("CSP-1", PowerState.RUNNING, Storage.GLUSTER, False, False,
         RemoveStale(host="CSP-1", power_off_first=True, keep_disk=True)),
        # ... a local one is only stopped and kept until the VM is seen where it belongs.
        ("CSP-1", PowerState.RUNNING, Storage.LOCAL, False, False,
         StopStale(host="CSP-1", power_off=True)),
        ("CSP-1", PowerState.STOPPED, Storage.LOCAL, False, False,
         StopStale(host="CSP-1", power_off=False)),
        # The placement answers without the VM: this copy is the VM.
        ("CSP-1", PowerState.STOPPED, Storage.GLUSTER, True, False, KeepOnlyCopy(host="CSP-1")),
    ],
)  # fmt: skip
def test_stale_copies(case: tuple[object, ...]) -> None:
    host, power, storage, answers, seen, expected = case
    assert isinstance(power, PowerState) and isinstance(storage, Storage)
    decision = stale_copy_decision(
        host=str(host),
        placed_on="CSP-2",
        copy_power=power,
        copy_storage=storage,
        placement_answers=bool(answers),
        seen_at_placement=bool(seen),
    )
    assert decision == expected


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (Capacity(what="memory", connector_id="CSP-2", detail="no memory"), TargetFailure.CAPACITY),
        (DiskHeld(vm_name="vm", connector_id="CSP-2"), TargetFailure.DISK_IN_USE),
        (HostUnreachable(connector_id="CSP-2", vm_name="vm"), TargetFailure.UNREACHABLE),
        (
            RetriesExhausted(what="create", connector_id="CSP-2", attempts=4, detail="timeout"),
            TargetFailure.UNREACHABLE,
        ),
        (
            VimRejected(what="creating vm", connector_id="CSP-2", detail="port taken"),
            TargetFailure.REFUSED,
        ),
    ],
)
def test_typed_failures_name_the_target_failure(failure: Failure, cause: TargetFailure) -> None:
    assert target_failure(failure) is cause
