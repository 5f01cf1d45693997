"""One convergence run: observe, plan, step, report, until converged or failed for good.

:class:`Converger` holds what the runs of every deployment share (the records, the journal
and event ports, the executor, the events a crash left owed) and runs one deployment's loop at
a time for the :class:`~esc_orch.reactor.engine.Reactor`, which decides when. Every step
produces the next record (:mod:`esc_orch.reactor.records`) and hands it to a port with the
intent, outcome or event it belongs to. Each run start, step, retry and wait is logged at INFO
with the deployment, the VM and the connector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from esc_orch import metrics
from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    CreateVm,
    DeleteReason,
    DeleteVm,
    MigrateVm,
    PowerOn,
    Reboot,
    SourceState,
)
from esc_orch.model.clock import Clock
from esc_orch.model.eo_events import LogEntry
from esc_orch.model.events import EventType
from esc_orch.model.failure import (
    ConfigUnsatisfiable,
    DiskHeld,
    Failure,
    Internal,
    NoProgress,
    StepLimit,
    Waited,
    cause_of,
    describe,
)
from esc_orch.model.lifecycle import (
    DeploymentState,
    LifecycleOperation,
    VmLifecycleState,
)
from esc_orch.model.ports import EventSink, Intent, Journal, Outcome, StepStatus
from esc_orch.model.record import (
    DeploymentRecord,
    FailureNote,
    RecordChange,
    StepInFlight,
    Undeployed,
)
from esc_orch.model.vim import PowerState
from esc_orch.reactor import records as rec
from esc_orch.reactor.alive import AliveVerdicts
from esc_orch.reactor.execute import Executor, Replan, StepFailed
from esc_orch.reactor.observe import ConnectorProvider, needed_connectors, observe
from esc_orch.reactor.proofgate import MoveProof, ProofGate
from esc_orch.reactor.proving import Proving
from esc_orch.reactor.quiet import QuietSteps
from esc_orch.reactor.report import Reporter
from esc_orch.reactor.status import DeploymentTarget, RunOutcome
from esc_orch.reconcile.desired import DesiredState, desired_vms, undeploy_state
from esc_orch.reconcile.errors import UnsatisfiableDeployment
from esc_orch.reconcile.identity import UuidFactory, adopt_identities
from esc_orch.reconcile.observed import Observation
from esc_orch.reconcile.planner import plan
from esc_orch.reconcile.proof import (
    MayStart,
)
from esc_orch.vim.retry import RetryPolicy, Sleep

log = logging.getLogger(__name__)

Key = tuple[str, str]
#: Seconds between looks at a moved VM the next move of its group waits for (a KPI verdict
#: wakes the wait sooner).
SETTLE_POLL = 1.0


class _Run:
    """One convergence run of one deployment (its target and event builder)."""

    def __init__(self, target: DeploymentTarget, depid: str, operation: LifecycleOperation) -> None:
        self.target = target
        self.key = target.key
        self.operation = operation
        self.reporter = Reporter(target=target, depid=depid, operation=operation)
        self.steps = 0
        self.reported = False
        self.published = False
        self.notes: list[str] = []
        self.rebooted: set[str] = set()
        #: Moves away from a silent source waiting for proof, by VM name.
        self.proofs: dict[str, MoveProof] = {}
        #: The last proven start was refused by the disk lock: the same move is tried again.
        self.lock_refused = False
        #: VMs moved in this run -> their target: the next VM of the group moves only once
        #: the previous one runs there again (so at least N-1 run throughout).
        self.moved: dict[str, str] = {}
        #: Moved VMs the next move waits for: since when, and whether the wait was logged.
        self.settle_since: dict[str, datetime] = {}
        self.settle_logged: set[str] = set()
        #: VMs whose re-create or move a crash cut and this run finishes (its owed VM_UPDATED
        #: paid): starting them again is part of that step, not a VM_STARTED of its own.
        self.finishing: set[str] = set()
        #: The observation the current plan was made from (a stale copy's facts).
        self.obs: Observation | None = None
        #: The deployment's state before the run, and since when a resync waits for a host.
        self.state_before = DeploymentState.ACTIVE
        self.waiting_since: datetime | None = None


def _where(target: DeploymentTarget, action: Action | None = None) -> dict[str, str]:
    """Log fields: the deployment, and the VM and connector of ``action``."""
    fields = {"deployment": f"{target.tenant}/{target.name}"}
    if action is not None:
        fields |= {"vm": action.vm.name, "connector": action.connector_id}
    return fields


def _alive_pending(
    record: DeploymentRecord, desired: DesiredState, by_monitor: frozenset[str]
) -> bool:
    """Is a running VM of a monitor-watched group not reported alive yet?"""
    for vm in desired.vms:
        entry = record.vm(vm.name)
        if vm.power_on and vm.identity.group in by_monitor and entry and not entry.alive:
            return True
    return False


class Converger(Proving["_Run"], QuietSteps["_Run"]):
    """Runs one deployment's convergence loop at a time; see the module docstring."""

    def __init__(
        self,
        *,
        connectors: ConnectorProvider,
        journal: Journal,
        events: EventSink,
        sleep: Sleep,
        new_uuid: UuidFactory,
        clock: Clock,
        retry: RetryPolicy,
        max_steps: int,
        records: dict[Key, DeploymentRecord],
        pending: dict[Key, DeploymentTarget],
        proof: ProofGate,
        observe_timeout: float | None = None,
        alive: AliveVerdicts | None = None,
        alive_timeout: float = 300.0,
        on_silent: Callable[[str], None] | None = None,
    ) -> None:
        self._connectors = connectors
        self._journal = journal
        self._events = events
        self._sleep = sleep
        self._new_uuid = new_uuid
        self._clock = clock
        self._retry = retry
        self._max_steps = max_steps
        self._executor = Executor(connectors=connectors, policy=retry, sleep=sleep)
        self._proof = proof
        self._observe_timeout = observe_timeout
        self._alive = alive if alive is not None else AliveVerdicts(sleep=sleep)
        self._alive_timeout = alive_timeout
        self._on_silent = on_silent
        #: Shared with the Reactor: the records and the queued targets.
        self._records = records
        self._pending = pending

    def _next_reboot(self, run: _Run, desired: DesiredState, obs: Observation) -> Reboot | None:
        """The next VM the target asks to reboot, once everything else has converged."""
        for vm in desired.vms:
            if vm.name not in run.target.reboot or vm.name in run.rebooted:
                continue
            run.rebooted.add(vm.name)
            if any(c.connector_id == vm.connector_id for c in obs.copies(vm.name)):
                return Reboot(vm=vm.identity, connector_id=vm.connector_id)
        return None

    def record_for(self, target: DeploymentTarget) -> DeploymentRecord:
        """The deployment's record, created on first sight."""
        record = self._records.get(target.key)
        if record is None:
            record = DeploymentRecord(
                tenant=target.tenant, name=target.name, depid=self._new_uuid()
            )
            self._records[target.key] = record
        return record

    def _get(self, run: _Run) -> DeploymentRecord:
        return self._records[run.key]

    def _put(self, record: DeploymentRecord) -> DeploymentRecord:
        self._records[record.key] = record
        return record

    async def _publish(self, run: _Run, event: LogEntry, record: RecordChange) -> None:
        run.published = True
        await self._events.publish(event, record=record)

    def _start(self, target: DeploymentTarget) -> _Run:
        record = self.record_for(target)
        if target.operation is not None:
            operation = target.operation
        elif target.deployment is None:
            operation = LifecycleOperation.UNDEPLOY
        else:
            operation = (
                LifecycleOperation.UPDATE if record.ever_active else LifecycleOperation.DEPLOY
            )
        before = record.state
        record = self._put(rec.started(record, operation))
        log.info("%s run started", operation, extra=_where(target))
        run = _Run(target, record.depid, operation)
        run.state_before = before
        return run

    async def converge(self, target: DeploymentTarget) -> RunOutcome:
        run = self._start(target)
        try:
            outcome = await self._loop(run)
        except Exception as exc:  # a bug must not kill the worker nor go unreported
            log.exception("reactor: run of %s/%s crashed", target.tenant, target.name)
            outcome = await self._fail(run, Internal(detail=f"{type(exc).__name__}: {exc}"), None)
        finally:
            for name in run.moved:
                self._alive.done(name)
        return outcome

    async def _observe(self, run: _Run) -> Observation:
        target, record = run.target, self._get(run)
        applied = {v.name: v.applied for v in record.vms if v.applied is not None}
        # Other deployments' VMs whose names can look like ours (``<name>_...``): only those
        # whose deployment name is a prefix of ours or has ours as a prefix (computing every
        # record's VM names made each observation O(deployments)).
        name = target.name
        others = [
            r
            for key, r in self._records.items()
            if key != target.key and (r.name.startswith(name) or name.startswith(r.name))
        ]
        needed = needed_connectors(
            deployment=target.deployment,
            connectors=target.connectors,
            record=record,
        )
        needed |= {c for v in record.vms for c in v.left_on if c in target.connectors}
        obs = await observe(
            connectors=self._connectors,
            connector_ids=needed,
            timeout=self._observe_timeout,
            deployment=target.name,
            applied=applied,
            foreign=target.foreign.union(*(r.names() for r in others)),
        )
        now = self._clock()
        for view in obs.views:
            if view.reachable:
                self._proof.saw(view.connector_id, now)
            elif self._on_silent is not None:
                self._on_silent(view.connector_id)
        namesakes = self._records.keys() | self._pending.keys()
        if any(key[1] == target.name and key != target.key for key in namesakes):
            # Another tenant's deployment has this name, so its VMs look like ours: touch
            # nothing we did not name ourselves (no adoption, no orphan removal).
            unowned = obs.names() - record.names()
            obs = replace(obs, foreign=obs.foreign | unowned)
        groups = {g.name for g in target.deployment.vm_group} if target.deployment else set()
        groups |= {v.identity.group for v in record.vms}
        adopted = adopt_identities(
            deployment=target.name,
            groups=groups,
            observed_names=obs.names() - obs.foreign,
            known=record.identities(),
            new_uuid=self._new_uuid,
        )
        self._put(rec.observed(record, obs, adopted))
        return obs

    def _desired(self, run: _Run) -> DesiredState:
        target, record = run.target, self._get(run)
        known = record.identities()
        if target.deployment is None:
            return undeploy_state(tenant=target.tenant, deployment=target.name, known=known)
        desired = desired_vms(
            deployment=target.deployment,
            tenant=target.tenant,
            flavors=target.flavors,
            connectors=target.connectors,
            existing_identities=known,
            new_uuid=self._new_uuid,
            stopped=target.stopped,
        )
        self._put(rec.planned(record, desired, stopped=target.stopped))
        return desired

    async def _loop(self, run: _Run) -> RunOutcome:
        last: Action | None = None
        waits = 0
        while True:
            obs = run.obs = await self._observe(run)
            try:
                desired = self._desired(run)
            except UnsatisfiableDeployment as exc:
                failure: Failure = ConfigUnsatisfiable(
                    deployment=exc.deployment, problems=tuple(str(p) for p in exc.problems)
                )
                return await self._fail(run, failure, None, code=400)
            current = plan(desired=desired, observed=obs)
            run.notes += [n for n in current.notes if n not in run.notes]
            if current.done:
                reboot = self._next_reboot(run, desired, obs)
                if reboot is None:
                    return await self._succeed(run, desired, obs)
                current = replace(current, actions=(reboot,))
            if not current.runnable:
                waits += 1
                blocked = current.blocked
                silent = self._silent_host(run, blocked)
                if silent is not None:
                    self._put(replace(self._get(run), step=silent))
                if waits >= self._retry.attempts:
                    if silent is not None:
                        return await self._wait_for_host(run, silent)
                    failure = Waited(attempts=waits, blocked=tuple(b.failure for b in blocked))
                    return await self._fail(run, failure, blocked[0])
                delay = self._retry.delay(attempt=waits)
                log.info(
                    "waiting %.1f s: %s",
                    delay,
                    blocked[0].reason,
                    extra=_where(run.target, blocked[0]) | {"wait_s": round(delay, 3)},
                )
                await self._sleep(delay)
                continue
            action = current.runnable[0]
            settling = self._settling(run, action, obs)
            if isinstance(settling, StepInFlight):
                self._put(replace(self._get(run), step=settling))
                if settling.vm_name not in run.settle_logged:
                    run.settle_logged.add(settling.vm_name)
                    log.info("%s", settling.detail, extra=_where(run.target, action))
                await self._alive.wait(SETTLE_POLL)
                continue
            if settling is not None:
                return await self._fail(run, settling, action)
            proven: MayStart | None = None
            if isinstance(action, MigrateVm) and action.source is SourceState.UNREACHABLE:
                gated = await self._prove(run, action)
                if isinstance(gated, RunOutcome):
                    return gated
                if gated is None:
                    continue  # waited or fenced: observe again (the source may answer now)
                proven, last = gated, None
            if action == last:
                failure = NoProgress(
                    step=type(action).__name__,
                    vm_name=action.vm.name,
                    connector_id=action.connector_id,
                )
                return await self._fail(run, failure, action)
            if run.steps >= self._max_steps:
                return await self._fail(run, StepLimit(steps=run.steps), action)
            waits = 0
            failed = await self._step(run, action, proven=proven)
            if failed is not None:
                return failed
            if isinstance(action, MigrateVm):
                run.moved[action.vm.name] = action.connector_id
            last = None if run.lock_refused else action
            run.lock_refused = False

    async def _step(
        self, run: _Run, action: Action, *, proven: MayStart | None = None
    ) -> RunOutcome | None:
        """Journal, act, remember, report; the failed outcome, or None to go on.

        ``proven``: the proof gate let a move away from a silent source start; a refusal by
        the disk lock then means "not yet" (remembered, the move waits), not a failure.
        """
        name = action.vm.name
        record = self._get(run)
        entry = record.vm(name)
        owed = entry.owed if entry is not None else None
        if owed is not None and (action.report is not None or isinstance(action, AcceptSpec)):
            # A crash cut a step of this VM (its event is owed): this step finishes that work
            # (a delete or power change not made yet, the create of a re-create or move, or
            # nothing left but recording the spec), so it reports what the cut step would have.
            # The debt stays in the record until the step's event is logged with it.
            action = replace(action, report=owed)
            if owed.event is EventType.VM_UPDATED:
                run.finishing.add(name)
        elif isinstance(action, PowerOn) and name in run.finishing:
            # e.g. a copy-disk move cut after its stop: the copy is done as a stopped VM's,
            # then the VM is started as the cut move would have (reported with it).
            action = replace(action, report=None)
        intent = Intent(
            step_id=self._new_uuid(),
            tenant=run.target.tenant,
            deployment=run.target.name,
            depid=record.depid,
            operation=run.operation,
            action=action,
        )
        step = StepInFlight(
            step_id=intent.step_id,
            action=type(action).__name__,
            vm_name=name,
            connector_id=action.connector_id,
            started=self._clock(),
        )
        record = self._put(rec.stepping(record, action, step, run.operation))
        await self._journal.record_intent(intent, record=record)
        log.info("step %s", step.action, extra=_where(run.target, action))
        if isinstance(action, DeleteVm) and action.reason is DeleteReason.STALE_COPY:
            log.warning(
                "removing the stale copy of %s from VIM connector %s before it can run%s",
                name,
                action.connector_id,
                " (its shared disk is kept: the VM runs on it elsewhere)"
                if action.keep_disk
                else "",
                extra=_where(run.target, action),
            )
        run.steps += 1
        timer = metrics.StepTimer(action=step.action)
        try:
            result = await self._executor.run(
                action,
                proven=proven is not None,
                port_ids=self._port_ids(run, action),
                progress=self._copy_progress(run, step.step_id),
            )
        except Replan as exc:
            timer.end(outcome="replan")
            log.info(
                "step %s: re-planning (%s)", step.action, exc, extra=_where(run.target, action)
            )
            record = self._put(replace(self._get(run), step=None))
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.REPLANNED), record=record
            )
            return None
        except StepFailed as exc:
            timer.end(outcome="failed")
            lock = proven is not None and isinstance(exc.failure, DiskHeld)
            cleared = self._put(replace(self._get(run), step=None)) if lock else None
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.FAILED, failure=exc.failure),
                record=cleared,
            )
            if lock:
                proof = run.proofs.get(name)
                if proof is not None:
                    proof.lock_held_at = self._clock()
                run.lock_refused = True
                log.info(
                    "%s: the disk lock refused the start (%s still holds it)",
                    name,
                    getattr(action, "source_connector_id", "?"),
                    extra=_where(run.target, action),
                )
                return None
            return await self._fail(run, exc.failure, action)
        timer.end(outcome="done")
        record = self._put(rec.stepped(self._get(run), action, result.state, at=self._clock()))
        await self._journal.record_outcome(
            Outcome(step_id=intent.step_id, status=StepStatus.DONE), record=record
        )
        await self._report(run, action)
        if isinstance(action, DeleteVm) and action.reason is DeleteReason.STALE_COPY:
            await self._stale_removed(run, action)
        return None

    async def _report(self, run: _Run, action: Action) -> None:
        report = action.report
        if report is not None:
            run.reported = True
            event = run.reporter.vm_event(action, report, self._get(run))
            await self._publish(run, event, self._get(run))
        entry = self._get(run).vm(action.vm.name)
        running = entry is not None and (
            entry.observed is not None and entry.observed.power is PowerState.RUNNING
        )
        deploying = run.operation is LifecycleOperation.DEPLOY or isinstance(action, CreateVm)
        by_monitor = action.vm.group in run.target.alive_by_monitor
        if running and deploying and entry is not None and not entry.alive and not by_monitor:
            # Stand-in until KPI monitoring: a running VM is reported alive once.
            record = self._put(
                self._get(run).with_vm(action.vm.name, alive=True, state=VmLifecycleState.ALIVE)
            )
            await self._publish(run, run.reporter.alive(action.vm, record), record)

    async def _succeed(self, run: _Run, desired: DesiredState, obs: Observation) -> RunOutcome:
        target = run.target
        await self._pay_owed(run, desired, obs)
        change: RecordChange
        if run.operation is LifecycleOperation.UNDEPLOY:
            self._records.pop(target.key, None)
            change = Undeployed(tenant=target.tenant, name=target.name)
        else:
            change = self._put(rec.converged(self._get(run), desired, obs))
        owed_alive = (
            run.operation is LifecycleOperation.DEPLOY
            and isinstance(change, DeploymentRecord)
            and _alive_pending(change, desired, target.alive_by_monitor)
        )
        if owed_alive and isinstance(change, DeploymentRecord) and not target.quiet:
            # VM_ALIVE comes from the KPI: SERVICE_ALIVE once the monitor has seen them all
            # (the debt moves from the commit's owed run to alive_owed, in one record)
            change = self._put(
                replace(change, run=None, alive_owed=True, settled_txid=self._settled(run))
            )
            await self._journal.save(change)
        elif not target.quiet and (not target.resync or run.reported):
            if isinstance(change, DeploymentRecord):
                change = self._put(replace(change, run=None, settled_txid=self._settled(run)))
            else:
                change = replace(change, settled_txid=target.txid)
            await self._publish(run, run.reporter.service(), change)
        elif isinstance(change, DeploymentRecord):
            if target.resync:  # a resync's run ends here: a restart has nothing to finish
                change = self._put(replace(change, run=None))
            await self._journal.save(change)
        log.info(
            "%s run succeeded after %d step(s)", run.operation, run.steps, extra=_where(target)
        )
        return RunOutcome(
            tenant=target.tenant,
            name=target.name,
            operation=run.operation,
            ok=True,
            steps=run.steps,
            notes=tuple(run.notes),
        )

    def _settled(self, run: _Run) -> int:
        """The txid the run's service event settles (never lower than one settled before)."""
        return max(self._get(run).settled_txid, run.target.txid)

    async def _pay_owed(self, run: _Run, desired: DesiredState, obs: Observation) -> None:
        """Events a crash left unsent, now that the deployment is where it should be.

        A step done on the VIM whose event was not logged (its intent was found open; the
        debt is in the record, ``VmRecord.owed``) is reported here unless a step of this run
        already did (deletions and power changes need no step after a restart); each is
        logged with the record that clears it. A VM that runs but was never reported alive is.
        """
        for debtor in self._get(run).vms:
            if debtor.owed is None:
                continue
            run.reported = True
            record = self._put(self._get(run).with_vm(debtor.name, owed=None))
            event = run.reporter.vm_report(debtor.identity, debtor.owed, record)
            await self._publish(run, event, record)
        if run.operation is not LifecycleOperation.DEPLOY:
            return
        for vm in desired.vms:
            if vm.identity.group in run.target.alive_by_monitor:
                continue  # the monitor reports it alive (its KPI)
            running = any(c.state.power is PowerState.RUNNING for c in obs.copies(vm.name))
            entry = self._get(run).vm(vm.name)
            if running and entry is not None and not entry.alive:
                record = self._put(self._get(run).with_vm(vm.name, alive=True))
                await self._publish(run, run.reporter.alive(vm.identity, record), record)

    async def _fail(
        self, run: _Run, failure: Failure, action: Action | None, *, code: int = 500
    ) -> RunOutcome:
        note = FailureNote(failure=failure, at=self._clock())
        record = replace(self._get(run), state=DeploymentState.ERROR, last_failure=note, step=None)
        reason = describe(failure)
        if action is not None:
            record = record.with_vm(action.vm.name, state=VmLifecycleState.ERROR, last_failure=note)
        record = self._put(record)
        if action is not None and action.report is not None:
            record = self._put(record.with_vm(action.vm.name, owed=None))
            event = run.reporter.vm_event(action, action.report, record, failure=reason)
            await self._publish(run, event, record)
        if not run.target.quiet:
            record = self._put(replace(record, run=None, settled_txid=self._settled(run)))
            await self._publish(run, run.reporter.service(failure=reason, code=code), record)
        else:
            await self._journal.save(record)
        log.warning(
            "reactor: %s/%s failed: %s",
            run.target.tenant,
            run.target.name,
            reason,
            extra=_where(run.target, action) | {"cause": str(cause_of(failure))},
        )
        return RunOutcome(
            tenant=run.target.tenant,
            name=run.target.name,
            operation=run.operation,
            ok=False,
            failure=failure,
            steps=run.steps,
            notes=tuple(run.notes),
        )
