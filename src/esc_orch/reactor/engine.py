"""The reactor: converges deployments to their desired state through the VIM connectors.

One run is a loop: observe every connector, plan (pure), take the first runnable action with
its intent journaled before and its outcome after, report its event, and observe again, until
the plan is done or a step fails for good. Re-planning after every step is what makes a crash,
a retry or a surprise on the host harmless: the plan only ever depends on what is there now.

Work on one deployment is serialised; different deployments run in parallel up to
``max_parallel``. A desired state submitted while its deployment is being worked on waits
until the current run ends, then the latest one submitted is converged to (the ones in between
are skipped, never half-applied).

What the reactor knows of a deployment is one immutable
:class:`~esc_orch.model.record.DeploymentRecord` (``status``); the run itself, which produces
the next record with each step, is :mod:`esc_orch.reactor.converge`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from esc_orch import metrics
from esc_orch.model.clock import Clock, utc_now
from esc_orch.model.eo_events import LogEntry
from esc_orch.model.events import EscEvent
from esc_orch.model.ports import EventSink, Intent, Journal, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, RecordChange
from esc_orch.reactor import records as rec
from esc_orch.reactor.alive import AliveVerdicts
from esc_orch.reactor.converge import Converger, Key
from esc_orch.reactor.execute import Executor
from esc_orch.reactor.observe import ConnectorProvider
from esc_orch.reactor.proofgate import NoProofSources, ProofGate, ProofSources
from esc_orch.reactor.recovery_step import RecoverySteps
from esc_orch.reactor.status import DeploymentTarget, RunOutcome
from esc_orch.reconcile.identity import UuidFactory
from esc_orch.reconcile.proof import ProofPolicy
from esc_orch.vim.retry import RetryPolicy, Sleep

DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay=1.0, max_delay=30.0)
DEFAULT_PROOF = ProofPolicy()


class Reactor:
    """Runs deployments' plans. All collaborators are injected (no real clock, no globals)."""

    def __init__(
        self,
        *,
        connectors: ConnectorProvider,
        journal: Journal,
        events: EventSink,
        sleep: Sleep,
        new_uuid: UuidFactory,
        clock: Clock = utc_now,
        max_parallel: int = 4,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_steps: int = 500,
        proof_sources: ProofSources | None = None,
        proof_policy: ProofPolicy = DEFAULT_PROOF,
        observe_timeout: float | None = None,
        alive_timeout: float = 300.0,
    ) -> None:
        self._journal = journal
        #: The monitoring's alive verdicts (the daemon's monitoring feeds them): a group's
        #: next VM moves once the one moved before is alive.
        self.alive = AliveVerdicts(sleep=sleep)
        #: Told (on the loop) of every connector a run found silent: the daemon's VIM
        #: supervisor checks it, so its return is noticed within seconds (set by the wiring).
        self.on_silent: Callable[[str], None] | None = None
        self._events = events
        self._limit = asyncio.Semaphore(max_parallel)
        self._pending: dict[Key, DeploymentTarget] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._records: dict[Key, DeploymentRecord] = {}
        self._outcomes: dict[Key, RunOutcome] = {}
        #: Per deployment: the futures of the targets queued in ``_pending`` (see submit).
        self._tickets: dict[Key, list[asyncio.Future[RunOutcome]]] = {}
        #: Deployments whose run in progress has sent its service event, its last act.
        self._ending: set[Key] = set()
        self._converger = Converger(
            connectors=connectors,
            journal=journal,
            events=_EndWatch(events, self._ending),
            sleep=sleep,
            new_uuid=new_uuid,
            clock=clock,
            retry=retry,
            max_steps=max_steps,
            records=self._records,
            pending=self._pending,
            proof=ProofGate(
                sources=proof_sources if proof_sources is not None else NoProofSources(sleep),
                policy=proof_policy,
            ),
            observe_timeout=observe_timeout,
            alive=self.alive,
            alive_timeout=alive_timeout,
            on_silent=self._silent,
        )
        #: One lock per deployment: held by a run for its length, and by a recovery step.
        self._locks: dict[Key, asyncio.Lock] = {}
        #: Recovery steps and the monitor's findings (VM_ALIVE, recovery states).
        self.recovery = RecoverySteps(
            records=self._records,
            journal=journal,
            events=events,
            executor=Executor(connectors=connectors, policy=retry, sleep=sleep),
            clock=clock,
            new_uuid=new_uuid,
            lock=self._lock,
        )

    def _silent(self, connector_id: str) -> None:
        if self.on_silent is not None:
            self.on_silent(connector_id)

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- submitting work -------------------------------------------------------------------
    def submit(self, target: DeploymentTarget) -> asyncio.Future[RunOutcome]:
        """Queue ``target`` (replacing any queued one of that deployment); start a worker.

        Returns the outcome of the run that takes it up (the run of a target that replaced
        it while queued, which does what it wanted too) - not of a run submitted later, as
        :meth:`last_outcome` may be once the caller looks.
        """
        key = target.key
        self._pending[key] = target
        ticket: asyncio.Future[RunOutcome] = asyncio.get_running_loop().create_future()
        self._tickets.setdefault(key, []).append(ticket)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name=f"reactor {key}")
        return ticket

    async def run(self, target: DeploymentTarget) -> RunOutcome:
        """Submit and wait until the deployment is idle; the outcome of its last run."""
        self.submit(target)
        await self.wait(target.tenant, target.name)
        return self._outcomes[target.key]

    async def wait(self, tenant: str, name: str) -> None:
        """Wait until the deployment is idle and the events of its runs are durable."""
        while (task := self._workers.get((tenant, name))) is not None:
            await asyncio.shield(task)
        await self._events.durable()

    async def drain(self) -> None:
        """Wait until no deployment has work in progress or queued, and its events are durable."""
        while self._workers:
            await asyncio.gather(*(asyncio.shield(t) for t in list(self._workers.values())))
        await self._events.durable()

    async def resume(
        self,
        targets: Iterable[DeploymentTarget],
        *,
        records: Sequence[DeploymentRecord] = (),
        hold: Collection[Key] = (),
    ) -> tuple[Intent, ...]:
        """Start-up: restore ``records``, close unfinished intents, converge again.

        An intent without an outcome means the process stopped mid-step. It is marked
        abandoned and never replayed as such: its deployment is observed and re-planned, with
        the VM identity the intent carried, so a VM created just before the crash is found by
        name and not created twice. The intent's operation (deploy/update/undeploy) is kept,
        and the event of a step that was done on the VIM but not reported is sent then.
        That debt is written into the record (``VmRecord.owed``) in the very transaction that
        marks the intent abandoned, so a second crash right after the restart keeps it.
        Deployments in ``hold`` are restored and their intents closed, but not converged (a
        recovery resuming holds them; the caller converges them later).
        Returns the intents it closed.
        """
        for record in records:
            self._records[record.key] = replace(record, step=None)
        unfinished = await self._journal.unfinished()
        by_key: dict[Key, list[Intent]] = {}
        for intent in unfinished:
            key = (intent.tenant, intent.deployment)
            by_key.setdefault(key, []).append(intent)
            record = self._records.get(key) or DeploymentRecord(
                tenant=intent.tenant, name=intent.deployment, depid=intent.depid
            )
            vm = intent.action.vm
            if vm.vmid:
                record = record.with_identity(vm)
            if intent.action.report is not None:
                record = record.with_vm(vm.name, owed=intent.action.report)
            record = self._records[key] = replace(record, step=None)
            metrics.lifecycle_step(action=type(intent.action).__name__, outcome="abandoned")
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.ABANDONED), record=record
            )
        resumed_targets = []
        for given in targets:
            intents = by_key.get(given.key, [])
            resumed = given
            if intents:
                resumed = replace(given, operation=given.operation or intents[-1].operation)
            self._converger.record_for(
                resumed
            )  # every VM of every deployment is owned before any run
            resumed_targets.append(resumed)
        for resumed in resumed_targets:
            if resumed.key not in hold:
                self.submit(resumed)
        return unfinished

    # -- the records -----------------------------------------------------------------------
    def status(self, tenant: str, name: str) -> DeploymentRecord | None:
        """The deployment's record (opdata, actions), ``None`` when it has none."""
        return self._records.get((tenant, name))

    def last_outcome(self, tenant: str, name: str) -> RunOutcome | None:
        return self._outcomes.get((tenant, name))

    def deployments(self) -> tuple[Key, ...]:
        """Every deployment the reactor has a record of (for opdata)."""
        return tuple(sorted(self._records))

    def ending(self, tenant: str, name: str) -> bool:
        """Is the deployment's run in progress past its service event, and none queued?

        The event is published before the run's worker ends: a client that acts on it (an
        action "once its service event has arrived") may come in between.
        """
        key = (tenant, name)
        return key in self._ending and key not in self._pending

    def busy(self, tenant: str, name: str) -> bool:
        """Is a run of this deployment in progress or queued?"""
        return (tenant, name) in self._workers or (tenant, name) in self._pending

    async def set_flags(
        self,
        tenant: str,
        name: str,
        *,
        stopped: frozenset[str] | None = None,
        unmonitored: frozenset[str] | None = None,
        reboot: frozenset[str] | None = None,
        owed_service_action: str | None = None,
        settle_service_action: bool = False,
        quiet_run: bool = False,
        run_finished: bool = False,
        events: Sequence[EscEvent] = (),
    ) -> DeploymentRecord:
        """Change the VMs wanted off / unmonitored and log ``events``, in one transaction.

        ``owed_service_action`` records a serviceAction whose SERVICE_* event is owed;
        ``settle_service_action`` clears it, in the transaction that logs that event.
        ``reboot`` records the VMs an accepted REBOOT still has to reboot (each cleared by its
        reboot step); ``quiet_run`` that an action's run (no service event of its own) is
        owed, so a restart finishes it quietly; ``run_finished`` says that run ended, so a
        restart must not finish it again. Raises LookupError when the deployment has no VM
        placed yet.
        """
        record = self._records.get((tenant, name))
        if record is None or not any(v.applied for v in record.vms):
            raise LookupError(f"no deployed VM in {tenant}/{name}")
        record = rec.with_flags(
            record,
            stopped=stopped,
            unmonitored=unmonitored,
            reboot=reboot,
            owed_service_action=owed_service_action,
            settle_service_action=settle_service_action,
            quiet_run=quiet_run,
            run_finished=run_finished,
        )
        self._records[record.key] = record
        await self._journal.save(record, events=events)
        return record

    # -- the loop --------------------------------------------------------------------------
    async def _work(self, key: Key) -> None:
        try:
            while (target := self._pending.pop(key, None)) is not None:
                self._ending.discard(key)
                tickets = self._tickets.pop(key, [])
                try:
                    async with self._limit, self._lock(key):
                        self._outcomes[key] = outcome = await self._converger.converge(target)
                except BaseException:
                    for ticket in tickets:
                        ticket.cancel()
                    raise
                for ticket in tickets:
                    if not ticket.done():
                        ticket.set_result(outcome)
                metrics.lifecycle_run(operation=str(outcome.operation), ok=outcome.ok)
        finally:
            del self._workers[key]
            self._ending.discard(key)
            if key not in self._pending:  # stopped (cancelled): no run will answer these
                for ticket in self._tickets.pop(key, []):
                    ticket.cancel()


class _EndWatch:
    """The converger's event sink: notes a run's service event (``SERVICE_*``, its last act).

    Noted before the event is written: once it is durable a subscriber may receive it and act
    while the run's coroutine has yet to resume and end.
    """

    def __init__(self, inner: EventSink, ending: set[Key]) -> None:
        self._inner = inner
        self._ending = ending

    async def publish(self, event: LogEntry, *, record: RecordChange) -> None:
        if (
            isinstance(event, EscEvent)
            and str(event.event.type).startswith("SERVICE_")
            and event.tenant
            and event.depname
        ):
            self._ending.add((event.tenant, event.depname))
        await self._inner.publish(event, record=record)

    async def durable(self) -> None:
        await self._inner.durable()
