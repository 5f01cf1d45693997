"""Proof before a second copy: the reactor's side of :mod:`esc_orch.reconcile.proof`.

A move away from a source host that does not answer (``MigrateVm`` with source
``UNREACHABLE``) may start the VM on the target only once the old copy provably cannot run.
:class:`ProofGate` gathers the facts the pure decision needs — whether the source answers now,
the fence agent configured for it and the last fence proof or failure, an operator's
confirmation, when the disk lock last refused a start — asks
:func:`~esc_orch.reconcile.proof.second_copy_decision`, and tells the converger what to do:
start (``MayStart``), re-plan (the source answers again: it is stopped there first), fence
(``FenceFirst``: a journaled step of its own, done here through the agent), wait visibly
(``WaitForProof``: the record's step says what it waits for and what unblocks it), or fail
(``ProofTimedOut``: a :class:`~esc_orch.model.failure.ProofMissing` with the remedies).

Where the facts come from is the :class:`ProofSources` port: the daemon's (fence agents from
the configuration, durable operator confirmations, a wake-up when an RPC or an edit re-arms
waiting work), or :class:`NoProofSources` (no agents, no confirmations) in unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from esc_orch.fence.errors import FenceError, FenceFailure, FenceFailureKind
from esc_orch.fence.protocol import FenceAgent
from esc_orch.fence.types import FenceProof
from esc_orch.model.actions import MigrateVm, MigrationMode
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.vim import Storage
from esc_orch.reconcile.proof import (
    FenceFirst,
    ProofDecision,
    ProofPolicy,
    SourceFacts,
    second_copy_decision,
)
from esc_orch.vim.retry import Sleep

log = logging.getLogger(__name__)
#: Bound on one fence call (agents have their own request timeouts, this is the backstop).
FENCE_TIMEOUT = 30.0


class ProofSources(Protocol):
    """Where proof comes from (the daemon implements it; see the module docstring)."""

    def fence_agent(self, connector_id: str) -> tuple[FenceAgent, str] | None:
        """The fence agent of ``connector_id``'s host and that host's name, if configured."""
        ...

    def confirmation(self, connector_id: str) -> HostDownConfirmation | None:
        """The operator's latest confirmation that ``connector_id``'s host is down."""
        ...

    async def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early when waiting work is re-armed."""
        ...


@dataclass
class NoProofSources:
    """No fence agents, no confirmations; waits on the injected sleep (unit tests)."""

    sleep: Sleep
    confirmations: dict[str, HostDownConfirmation] = field(default_factory=dict)
    agents: dict[str, tuple[FenceAgent, str]] = field(default_factory=dict)

    def fence_agent(self, connector_id: str) -> tuple[FenceAgent, str] | None:
        return self.agents.get(connector_id)

    def confirmation(self, connector_id: str) -> HostDownConfirmation | None:
        return self.confirmations.get(connector_id)

    async def wait(self, seconds: float) -> None:
        await self.sleep(seconds)


@dataclass
class MoveProof:
    """What one waiting move has learnt so far (kept for the run)."""

    waiting_since: datetime
    lock_held_at: datetime | None = None


class ProofGate:
    """Facts in, a :data:`~esc_orch.reconcile.proof.ProofDecision` out; fences carried out."""

    def __init__(self, *, sources: ProofSources, policy: ProofPolicy) -> None:
        self.sources = sources
        self.policy = policy
        #: When each connector last answered an observation (a proof older proves nothing).
        self.answered: dict[str, datetime] = {}
        self.fences: dict[str, FenceProof] = {}
        self.fence_failures: dict[str, FenceFailure] = {}
        self.fence_failed_at: dict[str, datetime] = {}

    def saw(self, connector_id: str, at: datetime) -> None:
        """``connector_id`` answered at ``at``: earlier fences and confirmations are void."""
        self.answered[connector_id] = at
        self.fence_failures.pop(connector_id, None)

    def decide(self, action: MigrateVm, state: MoveProof, now: datetime) -> ProofDecision:
        source = action.source_connector_id
        agent = self.sources.fence_agent(source)
        failed_at = self.fence_failed_at.get(source)
        if agent is not None and failed_at is not None and now - failed_at < self.policy.lock_retry:
            agent = None  # a retryable fence failure is tried again after lock_retry, not now
        shared = (
            action.mode is MigrationMode.SHARED_DISK
            and action.source_storage is Storage.GLUSTER
            and action.spec.storage is Storage.GLUSTER
        )
        fence, confirmation = self.fences.get(source), self.sources.confirmation(source)
        held = state.lock_held_at
        if held is not None and now - held < self.policy.lock_retry:
            # The lock refused a start just now: the old copy runs whatever a fence or an
            # operator said. The lock is the stronger evidence; wait and let it decide again.
            agent, fence, confirmation = None, None, None
        facts = SourceFacts(
            host=source,
            answers=False,
            disk_shared=shared,
            last_answered=self.answered.get(source),
            fence_agent=agent[0].config.id if agent is not None else None,
            fence=fence,
            fence_failure=self.fence_failures.get(source),
            confirmation=confirmation,
            lock_held_at=state.lock_held_at,
        )
        return second_copy_decision(
            source=facts, waiting_since=state.waiting_since, now=now, policy=self.policy
        )

    async def fence(self, decision: FenceFirst, *, now: datetime) -> FenceProof | FenceFailure:
        """Fence the source through its agent; the proof is remembered, as is a failure."""
        agent = self.sources.fence_agent(decision.host)
        if agent is None:  # unconfigured meanwhile: decide again without it
            failure = FenceFailure(
                kind=FenceFailureKind.MISCONFIGURED,
                agent_id=decision.agent_id,
                host=decision.host,
                detail="no fence agent is configured any more",
            )
            self.fence_failures[decision.host] = failure
            return failure
        fence_agent, host = agent
        log.info(
            "fencing %s through %s before the move",
            host,
            decision.agent_id,
            extra={"connector": decision.host, "fence_agent": decision.agent_id},
        )
        try:
            proof = await asyncio.wait_for(fence_agent.fence(host=host), timeout=FENCE_TIMEOUT)
        except (FenceError, TimeoutError) as exc:
            failure = (
                exc.failure
                if isinstance(exc, FenceError)
                else FenceFailure(
                    kind=FenceFailureKind.UNREACHABLE,
                    agent_id=decision.agent_id,
                    host=host,
                    detail=f"no answer within {FENCE_TIMEOUT:g} s",
                )
            )
            self.fence_failures[decision.host] = failure
            self.fence_failed_at[decision.host] = now
            log.warning(
                "fencing %s failed: %s",
                host,
                failure.summary(),
                extra={"connector": decision.host, "fence_agent": decision.agent_id},
            )
            return failure
        # The proof is about the connector's host (the id the decision knows it by).
        proof = FenceProof(
            host=decision.host,
            agent_id=proof.agent_id,
            agent_type=proof.agent_type,
            method=proof.method,
            at=proof.at,
            detail=proof.detail or f"{host} powered off",
        )
        self.fences[decision.host] = proof
        self.fence_failures.pop(decision.host, None)
        log.info(
            "%s fenced (%s)",
            host,
            proof.method,
            extra={"connector": decision.host, "fence_agent": decision.agent_id},
        )
        return proof

    async def wait(self, until: datetime, now: datetime) -> None:
        await self.sources.wait(max((until - now).total_seconds(), 0.0))
