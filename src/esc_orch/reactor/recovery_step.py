"""Recovery steps and monitor findings carried out by the reactor, the only caller of a VIM.

The recovery policy (:mod:`esc_orch.reconcile.recovery`) issues plain actions — ``Reboot``,
``PowerOn``, ``DeleteVm``, ``CreateVm`` with a new vmid — with ``report=None`` (its
VM_RECOVERY_* notices are the report). :class:`RecoverySteps` journals each one like a plan's
step (intent before the VIM call, outcome after, the record with both), runs it with the same
executor and retries, and records what it did: a redeploy's new vmid becomes the VM's identity,
and every step after which the VM boots sets ``booted_at`` (the monitor starts over).
It also applies the monitor's findings to the record: VM_ALIVE from the KPI (and
SERVICE_ALIVE when the deploy run left it owed), and the recovery's VM states.

A step waits for the deployment's lock, held by a convergence run for its whole length, so
a recovery step and a run never interleave on one deployment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from esc_orch import metrics
from esc_orch.model.actions import Action, CreateVm, DeleteVm, PowerOn, Reboot
from esc_orch.model.clock import Clock
from esc_orch.model.failure import ConnectorUnusable, Failure
from esc_orch.model.lifecycle import LifecycleOperation, VmLifecycleState
from esc_orch.model.ports import EventSink, Intent, Journal, Outcome, StepStatus
from esc_orch.model.record import DeploymentRecord, FailureNote, StepInFlight
from esc_orch.model.vim import PowerState
from esc_orch.reactor import records as rec
from esc_orch.reactor.execute import Executor, Replan, StepFailed
from esc_orch.reactor.report import Reporter
from esc_orch.reactor.status import DeploymentTarget
from esc_orch.reconcile.identity import UuidFactory

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryStepResult:
    ok: bool
    failure: Failure | None = None


class RecoverySteps:
    """See the module docstring; shares the reactor's records, journal and locks."""

    def __init__(
        self,
        *,
        records: dict[Key, DeploymentRecord],
        journal: Journal,
        events: EventSink,
        executor: Executor,
        clock: Clock,
        new_uuid: UuidFactory,
        lock: Callable[[Key], asyncio.Lock],
    ) -> None:
        self._records = records
        self._journal = journal
        self._events = events
        self._executor = executor
        self._clock = clock
        self._new_uuid = new_uuid
        self._lock = lock

    def find(self, vm_name: str) -> DeploymentRecord | None:
        for record in self._records.values():
            if record.vm(vm_name) is not None:
                return record
        return None

    async def execute(self, action: Action) -> RecoveryStepResult:
        """Journal and run ``action``; a VIM failure is the result, never an exception."""
        name = action.vm.name
        record = self.find(name)
        if record is None:
            return RecoveryStepResult(
                ok=False,
                failure=ConnectorUnusable(
                    connector_id=action.connector_id, detail=f"{name} is no longer deployed"
                ),
            )
        key = record.key
        async with self._lock(key):
            record = self._records.get(key)
            if record is None or record.vm(name) is None:
                return RecoveryStepResult(
                    ok=False,
                    failure=ConnectorUnusable(
                        connector_id=action.connector_id, detail=f"{name} was undeployed"
                    ),
                )
            return await self._run(record, await self._fitting(action))

    async def _fitting(self, action: Action) -> Action:
        """A reboot of a VM the VIM shows stopped is a start (a stopped VM cannot reboot).

        The policy chooses PowerOn when the trigger said "stopped"; a VM stopped while its
        monitoring was off is noticed by its pings first, so the VIM is asked here.
        """
        if not isinstance(action, Reboot):
            return action
        try:
            connector = self._executor.connectors(action.connector_id)
            state = await asyncio.wait_for(connector.get_vm(name=action.vm.name), 10)
        except Exception:  # unreachable, unknown: the reboot itself will say why
            return action
        if state.power is PowerState.STOPPED:
            log.info("recovery: %s is stopped: starting it instead of a reboot", action.vm.name)
            return PowerOn(vm=action.vm, connector_id=action.connector_id, report=None)
        return action

    async def _run(self, record: DeploymentRecord, action: Action) -> RecoveryStepResult:
        name = action.vm.name
        intent = Intent(
            step_id=self._new_uuid(), tenant=record.tenant, deployment=record.name,
            depid=record.depid, operation=LifecycleOperation.UPDATE, action=action,
        )  # fmt: skip
        step = StepInFlight(
            step_id=intent.step_id, action=type(action).__name__, vm_name=name,
            connector_id=action.connector_id, started=self._clock(),
        )  # fmt: skip
        record = self._put(replace(record, step=step))
        await self._journal.record_intent(intent, record=record)
        log.info(
            "recovery step %s", step.action,
            extra={"deployment": f"{record.tenant}/{record.name}", "vm": name,
                   "connector": action.connector_id},
        )  # fmt: skip
        timer = metrics.StepTimer(action=step.action)
        try:
            result = await self._executor.run(action)
        except (StepFailed, Replan) as exc:
            failure = (
                exc.failure
                if isinstance(exc, StepFailed)
                else ConnectorUnusable(connector_id=action.connector_id, detail=str(exc))
            )
            timer.end(outcome="failed")
            after = self._put(replace(self._get(record.key), step=None))
            await self._journal.record_outcome(
                Outcome(step_id=intent.step_id, status=StepStatus.FAILED, failure=failure),
                record=after,
            )
            return RecoveryStepResult(ok=False, failure=failure)
        timer.end(outcome="done")
        after = self._put(
            rec.recovered(
                replace(self._get(record.key), step=None), action, result.state, at=self._clock()
            )
        )
        await self._journal.record_outcome(
            Outcome(step_id=intent.step_id, status=StepStatus.DONE), record=after
        )
        if isinstance(action, DeleteVm | CreateVm):
            await self._journal.save(after)  # the identity / placement now, not at the next event
        return RecoveryStepResult(ok=True)

    def _get(self, key: Key) -> DeploymentRecord:
        return self._records[key]

    def _put(self, record: DeploymentRecord) -> DeploymentRecord:
        self._records[record.key] = record
        return record

    # ------------------------------------------------------------------ monitor findings

    async def alive(self, vm_name: str) -> None:
        """The VM's KPI turned alive the first time: VM_ALIVE, and SERVICE_ALIVE when owed."""
        record = self.find(vm_name)
        entry = record.vm(vm_name) if record is not None else None
        if record is None or entry is None or entry.alive:
            return
        reporter = Reporter(
            target=DeploymentTarget(tenant=record.tenant, name=record.name, deployment=None),
            depid=record.depid,
            operation=LifecycleOperation.DEPLOY,
        )
        state = VmLifecycleState.ALIVE if entry.state in _ALIVE_FROM else entry.state
        record = self._put(record.with_vm(vm_name, alive=True, state=state))
        await self._events.publish(reporter.alive(entry.identity, record), record=record)
        wanted_on = [v for v in record.vms if not v.wanted_off]
        if record.alive_owed and all(v.alive for v in wanted_on):
            record = self._put(replace(record, alive_owed=False))
            await self._events.publish(reporter.service(), record=record)
        await self._events.durable()

    def set_vm(
        self, vm_name: str, *, recovery: VmLifecycleState | None, failure: Failure | None = None
    ) -> DeploymentRecord | None:
        """The recovery's state of the VM in the record (the caller saves it with its events)."""
        record = self.find(vm_name)
        if record is None:
            return None
        changes: dict[str, object] = {"recovery": recovery}
        if failure is not None:
            changes["last_failure"] = FailureNote(failure=failure, at=self._clock())
        if recovery is VmLifecycleState.ALIVE:
            changes |= {"recovery": None, "state": VmLifecycleState.ALIVE, "last_failure": None}
        return self._put(record.with_vm(vm_name, **changes))


_ALIVE_FROM = (VmLifecycleState.DEPLOYED, VmLifecycleState.DEPLOYING, VmLifecycleState.ALIVE)
