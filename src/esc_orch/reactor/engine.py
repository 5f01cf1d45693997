"""The reactor: converges deployments to their desired state through the VIM connectors.

One run is a loop: observe every connector, plan (pure), take the first runnable action with
its intent journaled before and its outcome after, report its event, and observe again, until
the plan is done or a step fails for good. Re-planning after every step is what makes a crash,
a retry or a surprise on the host harmless: the plan only ever depends on what is there now.

Work on one deployment is serialised; different deployments run in parallel up to
``max_parallel``. A desired state submitted while its deployment is being worked on waits
until the current run ends, then the latest one submitted is converged to (the ones in between
are skipped, never half-applied).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace

from esc_orch import metrics
from esc_orch.reactor.events import EventSink
from esc_orch.reactor.execute import Executor, Replan, StepFailed
from esc_orch.reactor.journal import Intent, Journal, Outcome, StepStatus
from esc_orch.reactor.observe import ConnectorProvider, observe
from esc_orch.reactor.report import STATE_DURING, Record, Reporter, vm_state_during
from esc_orch.reactor.status import DeploymentStatus, DeploymentTarget, RunOutcome, VmStatus
from esc_orch.reconcile.actions import (
    AcceptSpec,
    Action,
    CreateVm,
    DeleteVm,
    MigrateVm,
    PowerOff,
    Reboot,
    RecreateVm,
)
from esc_orch.reconcile.desired import DesiredState, desired_vms, undeploy_state
from esc_orch.reconcile.errors import UnsatisfiableDeployment
from esc_orch.reconcile.identity import UuidFactory, adopt_identities
from esc_orch.reconcile.observed import AppliedVm, Observation
from esc_orch.reconcile.planner import plan
from esc_orch.reconcile.vocab import DeploymentState, Operation, VmLifecycleState
from esc_orch.vim.retry import RetryPolicy, Sleep
from esc_orch.vim.types import PowerState, VmState

log = logging.getLogger(__name__)

Key = tuple[str, str]
DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay=1.0, max_delay=30.0)


class _Run:
    """One convergence run of one deployment (its target, memory and event builder)."""

    def __init__(self, target: DeploymentTarget, record: Record, operation: Operation) -> None:
        self.target = target
        self.record = record
        self.operation = operation
        self.reporter = Reporter(target=target, depid=record.depid, operation=operation)
        self.steps = 0
        self.reported = False
        self.notes: list[str] = []
        self.rebooted: set[str] = set()


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
        max_parallel: int = 4,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_steps: int = 500,
    ) -> None:
        self._connectors = connectors
        self._journal = journal
        self._events = events
        self._sleep = sleep
        self._new_uuid = new_uuid
        self._retry = retry
        self._max_steps = max_steps
        self._executor = Executor(connectors=connectors, policy=retry, sleep=sleep)
        self._limit = asyncio.Semaphore(max_parallel)
        self._pending: dict[Key, DeploymentTarget] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._records: dict[Key, Record] = {}
        self._outcomes: dict[Key, RunOutcome] = {}
        #: Reported actions abandoned by a crash, by VM name: their event is still owed.
        self._owed: dict[str, tuple[Key, Action]] = {}

    # -- submitting work -------------------------------------------------------------------
    def submit(self, target: DeploymentTarget) -> None:
        """Queue ``target`` (replacing any queued one of that deployment); start a worker."""
        key = target.key
        self._pending[key] = target
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name=f"reactor {key}")

    async def run(self, target: DeploymentTarget) -> RunOutcome:
        """Submit and wait until the deployment is idle; the outcome of its last run."""
        self.submit(target)
        await self.wait(target.tenant, target.name)
        return self._outcomes[target.key]

    async def wait(self, tenant: str, name: str) -> None:
        while (task := self._workers.get((tenant, name))) is not None:
            await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait until no deployment has work in progress or queued."""
        while self._workers:
            await asyncio.gather(*(asyncio.shield(t) for t in list(self._workers.values())))

    async def resume(self, targets: Iterable[DeploymentTarget]) -> tuple[Intent, ...]:
        """Start-up: close unfinished intents and converge again with their identities.

        An intent without an outcome means the process stopped mid-step. It is marked
        abandoned and never replayed as such: its deployment is observed and re-planned, with
        the VM identity the intent carried, so a VM created just before the crash is found by
        name and not created twice. The intent's operation (deploy/update/undeploy) is kept,
        and the event of a step that was done on the VIM but not reported is sent then.
        Returns the intents it closed.
        """
        unfinished = await self._journal.unfinished()
        by_key: dict[Key, list[Intent]] = {}
        for intent in unfinished:
            by_key.setdefault((intent.tenant, intent.deployment), []).append(intent)
            if intent.action.report is not None:
                key = (intent.tenant, intent.deployment)
                self._owed[intent.action.vm.name] = (key, intent.action)
            metrics.lifecycle_step(action=type(intent.action).__name__, outcome="abandoned")
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.ABANDONED, detail="resumed")
            )
        resumed_targets = []
        for given in targets:
            intents = by_key.get(given.key, [])
            resumed = given
            if intents:
                known = given.known + tuple(i.action.vm for i in intents if i.action.vm.vmid)
                resumed = replace(
                    given,
                    known=known,
                    depid=given.depid or intents[-1].depid,
                    operation=given.operation or intents[-1].operation,
                )
            self._record_for(resumed)  # every VM of every deployment is owned before any run
            resumed_targets.append(resumed)
        for resumed in resumed_targets:
            self.submit(resumed)
        return unfinished

    # -- opdata ----------------------------------------------------------------------------
    def status(self, tenant: str, name: str) -> DeploymentStatus | None:
        record = self._records.get((tenant, name))
        if record is None:
            return None
        vms = []
        for vm_name, ident in sorted(record.identities.items()):
            applied = record.applied.get(vm_name)
            seen = record.seen.get(vm_name)
            vms.append(
                VmStatus(
                    identity=ident,
                    state=record.vm_state.get(vm_name, VmLifecycleState.UNDEF),
                    connector_id=applied.connector_id if applied else None,
                    vim_project=applied.vim_project if applied else None,
                    observed=seen[1] if seen else None,
                )
            )
        return DeploymentStatus(
            tenant=tenant,
            name=name,
            depid=record.depid,
            state=record.state,
            vms=tuple(vms),
            error=record.error,
        )

    def last_outcome(self, tenant: str, name: str) -> RunOutcome | None:
        return self._outcomes.get((tenant, name))

    # -- the loop --------------------------------------------------------------------------
    async def _work(self, key: Key) -> None:
        try:
            while (target := self._pending.pop(key, None)) is not None:
                async with self._limit:
                    self._outcomes[key] = outcome = await self._converge(target)
                metrics.lifecycle_run(operation=str(outcome.operation), ok=outcome.ok)
        finally:
            del self._workers[key]

    def deployments(self) -> tuple[Key, ...]:
        """Every deployment the reactor has memory of (for opdata)."""
        return tuple(sorted(self._records))

    def busy(self, tenant: str, name: str) -> bool:
        """Is a run of this deployment in progress or queued?"""
        return (tenant, name) in self._workers or (tenant, name) in self._pending

    def _next_reboot(self, run: _Run, desired: DesiredState, obs: Observation) -> Reboot | None:
        """The next VM the target asks to reboot, once everything else has converged."""
        for vm in desired.vms:
            if vm.name not in run.target.reboot or vm.name in run.rebooted:
                continue
            run.rebooted.add(vm.name)
            if any(c.connector_id == vm.connector_id for c in obs.copies(vm.name)):
                return Reboot(vm=vm.identity, connector_id=vm.connector_id)
        return None

    def _record_for(self, target: DeploymentTarget) -> Record:
        """The deployment's memory, created on first sight, merged with what the target knows."""
        record = self._records.get(target.key)
        if record is None:
            record = Record(depid=target.depid or self._new_uuid())
            self._records[target.key] = record
        for ident in target.known:
            record.identities.setdefault(ident.name, ident)
        for vm_name, applied in target.applied.items():
            record.applied.setdefault(vm_name, applied)
        record.alive |= target.alive
        return record

    def _start(self, target: DeploymentTarget) -> _Run:
        record = self._record_for(target)
        if target.operation is not None:
            operation = target.operation
        elif target.deployment is None:
            operation = Operation.UNDEPLOY
        else:
            operation = Operation.UPDATE if record.ever_active else Operation.DEPLOY
        record.state = STATE_DURING[operation]
        record.error = None
        return _Run(target, record, operation)

    async def _converge(self, target: DeploymentTarget) -> RunOutcome:
        run = self._start(target)
        try:
            return await self._loop(run)
        except Exception as exc:  # a bug must not kill the worker nor go unreported
            log.exception("reactor: run of %s/%s crashed", target.tenant, target.name)
            return await self._fail(run, f"internal error: {type(exc).__name__}: {exc}", None)

    async def _observe(self, run: _Run) -> Observation:
        target, record = run.target, run.record
        others = [r for key, r in self._records.items() if key != target.key]
        obs = await observe(
            connectors=self._connectors,
            connector_ids=target.connectors.keys(),
            deployment=target.name,
            applied=record.applied,
            foreign=target.foreign.union(*(r.identities.keys() for r in others)),
        )
        namesakes = self._records.keys() | self._pending.keys()
        if any(key[1] == target.name and key != target.key for key in namesakes):
            # Another tenant's deployment has this name, so its VMs look like ours: touch
            # nothing we did not name ourselves (no adoption, no orphan removal).
            unowned = obs.names() - record.identities.keys()
            obs = replace(obs, foreign=obs.foreign | unowned)
        groups = {g.name for g in target.deployment.vm_group} if target.deployment else set()
        groups |= {i.group for i in record.identities.values()}
        for ident in adopt_identities(
            deployment=target.name,
            groups=groups,
            observed_names=obs.names() - obs.foreign,
            known=tuple(record.identities.values()),
            new_uuid=self._new_uuid,
        ):
            record.identities[ident.name] = ident
        for view in obs.views:
            for state in view.vms:
                applied = record.applied.get(state.name)
                if applied is None or applied.connector_id == view.connector_id:
                    record.seen[state.name] = (view.connector_id, state)
        return obs

    def _desired(self, run: _Run) -> DesiredState:
        target, record = run.target, run.record
        known = tuple(record.identities[n] for n in sorted(record.identities))
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
        for vm in desired.vms:  # remembered before any step names it
            record.identities.setdefault(vm.name, vm.identity)
            record.vm_state.setdefault(vm.name, VmLifecycleState.UNDEF)
        return desired

    async def _loop(self, run: _Run) -> RunOutcome:
        last: Action | None = None
        waits = 0
        while True:
            obs = await self._observe(run)
            try:
                desired = self._desired(run)
            except UnsatisfiableDeployment as exc:
                return await self._fail(run, str(exc), None, code=400)
            current = plan(desired=desired, observed=obs)
            run.notes += [n for n in current.notes if n not in run.notes]
            if current.done:
                reboot = self._next_reboot(run, desired, obs)
                if reboot is None:
                    return await self._succeed(run, desired, obs)
                current = replace(current, actions=(reboot,))
            if not current.runnable:
                waits += 1
                if waits >= self._retry.attempts:
                    blocked = current.blocked
                    return await self._fail(run, "; ".join(b.reason for b in blocked), blocked[0])
                await self._sleep(self._retry.delay(attempt=waits))
                continue
            action = current.runnable[0]
            if action == last:
                return await self._fail(run, _no_progress(action), action)
            if run.steps >= self._max_steps:
                return await self._fail(run, f"gave up after {run.steps} steps", action)
            waits = 0
            failed = await self._step(run, action)
            if failed is not None:
                return failed
            last = action

    async def _step(self, run: _Run, action: Action) -> RunOutcome | None:
        """Journal, act, remember, report; the failed outcome, or None to go on."""
        record, name = run.record, action.vm.name
        if isinstance(action, AcceptSpec | CreateVm | MigrateVm | RecreateVm):
            owed_entry = self._owed.pop(name, None)
            owed = owed_entry[1] if owed_entry else None
            if owed is not None and isinstance(action, AcceptSpec) and action.report is None:
                # The crashed step was done on the VIM; its event was never sent.
                action = replace(action, report=owed.report)
        intent = Intent(
            step_id=self._new_uuid(),
            tenant=run.target.tenant,
            deployment=run.target.name,
            depid=record.depid,
            operation=run.operation,
            action=action,
        )
        await self._journal.record_intent(intent)
        run.steps += 1
        if name in record.identities:
            record.vm_state[name] = vm_state_during(action)
        timer = metrics.StepTimer(action=type(action).__name__)
        try:
            result = await self._executor.run(action)
        except Replan as exc:
            timer.end(outcome="replan")
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.DONE, detail=f"replan: {exc}")
            )
            return None
        except StepFailed as exc:
            timer.end(outcome="failed")
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.FAILED, detail=exc.reason)
            )
            return await self._fail(run, exc.reason, action)
        timer.end(outcome="done")
        await self._journal.record_outcome(Outcome(step_id=intent.step_id, status=StepStatus.DONE))
        self._remember(record, action, result.state)
        await self._report(run, action)
        return None

    def _remember(self, record: Record, action: Action, state: VmState | None) -> None:
        name = action.vm.name
        if isinstance(action, CreateVm | RecreateVm | MigrateVm | AcceptSpec):
            record.applied[name] = AppliedVm(
                connector_id=action.connector_id, vim_project=action.vim_project, spec=action.spec
            )
        if state is not None:
            record.seen[name] = (action.connector_id, state)
            record.vm_state[name] = (
                VmLifecycleState.DEPLOYED
                if state.power is PowerState.RUNNING
                else VmLifecycleState.STOPPED
            )
        if isinstance(action, DeleteVm) and action.report is not None:
            for memory in (record.applied, record.seen, record.vm_state):
                memory.pop(name, None)

    async def _report(self, run: _Run, action: Action) -> None:
        record = run.record
        report = action.report
        if report is not None:
            run.reported = True
            await self._events.publish(run.reporter.vm_event(action, report, record))
        seen = record.seen.get(action.vm.name)
        running = seen is not None and seen[1].power is PowerState.RUNNING
        deploying = run.operation is Operation.DEPLOY or isinstance(action, CreateVm)
        if running and deploying and action.vm.name not in record.alive:
            # Stand-in until KPI monitoring: a running VM is reported alive once.
            record.alive.add(action.vm.name)
            record.vm_state[action.vm.name] = VmLifecycleState.ALIVE
            await self._events.publish(run.reporter.alive(action.vm, record))
        if isinstance(action, PowerOff):
            record.vm_state[action.vm.name] = VmLifecycleState.STOPPED

    async def _succeed(self, run: _Run, desired: DesiredState, obs: Observation) -> RunOutcome:
        record, target = run.record, run.target
        await self._pay_owed(run, desired, obs)
        for ident in desired.retired:
            for memory in (record.identities, record.applied, record.seen, record.vm_state):
                memory.pop(ident.name, None)
        if run.operation is Operation.UNDEPLOY:
            self._records.pop(target.key, None)
        else:
            for vm in desired.vms:
                running = any(c.state.power is PowerState.RUNNING for c in obs.copies(vm.name))
                record.vm_state[vm.name] = (
                    VmLifecycleState.ALIVE if running else VmLifecycleState.STOPPED
                )
            wanted_on = [vm for vm in desired.vms if vm.power_on]
            record.state = (
                DeploymentState.STOPPED if desired.vms and not wanted_on else DeploymentState.ACTIVE
            )
            record.ever_active = True
        if not target.quiet and (not target.resync or run.reported):
            await self._events.publish(run.reporter.service())
        return RunOutcome(
            tenant=target.tenant,
            name=target.name,
            operation=run.operation,
            ok=True,
            steps=run.steps,
            notes=tuple(run.notes),
        )

    async def _pay_owed(self, run: _Run, desired: DesiredState, obs: Observation) -> None:
        """Events a crash left unsent, now that the deployment is where it should be.

        A step done on the VIM whose event was not logged (its intent was found open) is
        reported here unless a step of this run already did (deletions and power changes
        need no step after a restart); a VM that runs but was never reported alive is.
        """
        record = run.record
        for name, (key, action) in list(self._owed.items()):
            if key != run.target.key or action.report is None:
                continue
            del self._owed[name]
            run.reported = True
            await self._events.publish(run.reporter.vm_event(action, action.report, record))
        if run.operation is not Operation.DEPLOY:
            return
        for vm in desired.vms:
            running = any(c.state.power is PowerState.RUNNING for c in obs.copies(vm.name))
            if running and vm.name not in record.alive:
                record.alive.add(vm.name)
                await self._events.publish(run.reporter.alive(vm.identity, record))

    async def _fail(
        self, run: _Run, reason: str, action: Action | None, *, code: int = 500
    ) -> RunOutcome:
        record = run.record
        record.state = DeploymentState.ERROR
        record.error = reason
        if action is not None:
            if action.vm.name in record.identities:
                record.vm_state[action.vm.name] = VmLifecycleState.ERROR
            if action.report is not None:
                await self._events.publish(
                    run.reporter.vm_event(action, action.report, record, failure=reason)
                )
        if not run.target.quiet:
            await self._events.publish(run.reporter.service(failure=reason, code=code))
        log.warning("reactor: %s/%s failed: %s", run.target.tenant, run.target.name, reason)
        return RunOutcome(
            tenant=run.target.tenant,
            name=run.target.name,
            operation=run.operation,
            ok=False,
            reason=reason,
            steps=run.steps,
            notes=tuple(run.notes),
        )


def _no_progress(action: Action) -> str:
    return (
        f"{type(action).__name__} of {action.vm.name} on VIM connector {action.connector_id} "
        "had no visible effect (the VIM still reports the same state): check the host"
    )
