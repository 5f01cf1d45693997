"""The ESC actions (``vmAction``, ``serviceAction``) carried out by the lifecycle.

An action is accepted (``<ok/>``) or refused with an rpc-error naming what is wrong: an
unknown VM or deployment (``data-missing``), a deployment with a run in progress or queued
(``in-use``: send it again when the run's service event has arrived - a run past that event
counts as over), or an action that
makes no sense in the VM's state (``invalid-value``). The outcome comes as escEvents:

* START / STOP — the VMs' wanted power is recorded durably (it survives restarts and later
  updates), then a reactor run powers them: ``VM_STARTED``/``VM_STOPPED`` per VM, and for
  ``serviceAction`` ``SERVICE_STARTED``/``SERVICE_STOPPED`` after them.
* REBOOT — a run that reboots the VMs once converged: ``VM_REBOOTED`` (+ ``SERVICE_REBOOTED``).
* ENABLE_MONITOR / DISABLE_MONITOR — the flag is recorded with its event
  (``VM_MONITOR_SET``/``VM_MONITOR_UNSET``) in one transaction; the monitor starts or stops
  watching the VM from the record (daemon/monitoring.py); opdata shows
  ``VM_MONITOR_DISABLED_STATE`` for an alive VM with monitoring off.

``recoveryVmAction DO`` starts a recovery of the VM now (``VM_RECOVERY_INIT`` ...), also of
a VM left in error by a recovery that gave up, and is folded into a recovery in progress.
Without monitoring (a daemon built without it) it is ``operation-not-supported``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence

from esc_orch import failpoints
from esc_orch.daemon.lifecycle import Key, LifecycleService
from esc_orch.daemon.monitoring import DaemonMonitoring
from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.model.events import EscEvent, EventType
from esc_orch.model.record import DeploymentRecord, VmRecord
from esc_orch.northbound.esc_rpcs import (
    ActionType,
    RecoveryVmActionRequest,
    ServiceActionRequest,
    VmActionRequest,
)
from esc_orch.reactor import RunOutcome, vm_details

_VM_EVENT = {
    ActionType.START: EventType.VM_STARTED,
    ActionType.STOP: EventType.VM_STOPPED,
    ActionType.REBOOT: EventType.VM_REBOOTED,
    ActionType.ENABLE_MONITOR: EventType.VM_MONITOR_SET,
    ActionType.DISABLE_MONITOR: EventType.VM_MONITOR_UNSET,
}
_SERVICE_EVENT = {
    ActionType.START: (EventType.SERVICE_STARTED, "started"),
    ActionType.STOP: (EventType.SERVICE_STOPPED, "stopped"),
    ActionType.REBOOT: (EventType.SERVICE_REBOOTED, "rebooted"),
}
_VM_MESSAGE = {
    ActionType.START: "VM [{name}] started successfully.",
    ActionType.STOP: "VM [{name}] stopped successfully.",
    ActionType.REBOOT: "VM [{name}] rebooted successfully.",
    ActionType.ENABLE_MONITOR: "VM [{name}] monitoring enabled.",
    ActionType.DISABLE_MONITOR: "VM [{name}] monitoring disabled.",
}


class LifecycleActions:
    """:class:`~esc_orch.northbound.esc_rpcs.EscActionSink` over the daemon's lifecycle."""

    def __init__(
        self, *, service: LifecycleService, monitoring: DaemonMonitoring | None = None
    ) -> None:
        self._service = service
        self._monitoring = monitoring

    # ------------------------------------------------------------------ finding targets

    def _find_vm(self, name: str, *, rpc: str = "vmAction") -> tuple[DeploymentRecord, VmRecord]:
        reactor = self._service.reactor
        for key in reactor.deployments():
            status = reactor.status(*key)
            for vm in status.vms if status else ():
                if vm.identity.name == name and status is not None:
                    return status, vm
        raise RpcError(
            tag=ErrorTag.DATA_MISSING,
            message=f"no VM named {name!r} is deployed (vmName is the generated VM name)",
            path=f"/esc:{rpc}/esc:vmName",
            info={"bad-element": "vmName"},
        )

    def _check_free(self, status: DeploymentRecord, what: str) -> None:
        reactor = self._service.reactor
        key = (status.tenant, status.name)
        # A run past its service event is as good as over: its worker ends just after that
        # event is published, and a client that waited for it, as the refusal below asks,
        # may come in between. The action's run is queued behind it.
        if reactor.busy(*key) and not reactor.ending(*key):
            raise RpcError(
                tag=ErrorTag.IN_USE,
                message=(
                    f"deployment {status.tenant}/{status.name} is busy with a deploy, update "
                    f"or action: send {what} again once its service event has arrived"
                ),
            )
        if (status.tenant, status.name) not in self._service.deployments:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"deployment {status.tenant}/{status.name} is being undeployed",
            )

    # ------------------------------------------------------------------ the sink

    async def vm_action(self, request: VmActionRequest, *, session_id: int) -> None:
        status, vm = self._find_vm(request.vm_name)
        self._check_free(status, f"vmAction {request.action} {request.vm_name}")
        await self._act(status, (vm,), request.action, service=False)

    async def service_action(self, request: ServiceActionRequest, *, session_id: int) -> None:
        key = (request.tenant_name, request.dep_name)
        status = self._service.reactor.status(*key)
        if status is None or key not in self._service.deployments:
            raise RpcError(
                tag=ErrorTag.DATA_MISSING,
                message=f"no deployment {request.dep_name!r} in tenant {request.tenant_name!r}",
                path="/esc:serviceAction/esc:depName",
                info={"bad-element": "depName"},
            )
        self._check_free(status, f"serviceAction {request.action}")
        await self._act(status, status.vms, request.action, service=True)

    async def recovery_vm_action(
        self, request: RecoveryVmActionRequest, *, session_id: int
    ) -> None:
        monitoring = self._monitoring
        if monitoring is None:
            raise RpcError(
                tag=ErrorTag.OPERATION_NOT_SUPPORTED,
                message="recoveryVmAction needs the daemon's monitoring, which is not running",
            )
        status, vm = self._find_vm(request.vm_name, rpc="recoveryVmAction")
        if vm.applied is None:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"VM {request.vm_name} is not placed on a VIM yet: nothing to recover",
            )
        if vm.name not in monitoring.subjects():
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=(
                    f"VM {request.vm_name} has no KPI monitoring (kpi_data): recovery follows "
                    "its vm_group's recovery_policy, which needs one"
                ),
            )
        if self._service.reactor.busy(status.tenant, status.name):
            self._check_free(status, f"recoveryVmAction DO {request.vm_name}")
        await monitoring.manual(vm.name)

    # ------------------------------------------------------------------ doing it

    async def _act(
        self,
        status: DeploymentRecord,
        vms: tuple[VmRecord, ...],
        action: ActionType,
        *,
        service: bool,
    ) -> None:
        svc = self._service
        key: Key = (status.tenant, status.name)
        names = frozenset(vm.identity.name for vm in vms)
        stopped = status.wanted_off()
        if action in (ActionType.ENABLE_MONITOR, ActionType.DISABLE_MONITOR):
            off = status.unmonitored()
            off = off | names if action is ActionType.DISABLE_MONITOR else off - names
            events = [self._vm_event(status, vm, action) for vm in vms]
            await self._set(key, unmonitored=off, events=events)
            return
        owed = action.value if service else None
        if action is ActionType.REBOOT:
            down = sorted(names & stopped)
            if down:
                raise RpcError(
                    tag=ErrorTag.INVALID_VALUE,
                    message=f"cannot reboot {', '.join(down)}: stopped (send START instead)",
                )
            # Durable before the reply: a restart still reboots them, quietly.
            await self._set(key, reboot=names, owed_service_action=owed, quiet_run=True)
            target = svc.target(key, reboot=names, quiet=True)
        else:
            stopped = stopped | names if action is ActionType.STOP else stopped - names
            await self._set(key, stopped=stopped, owed_service_action=owed, quiet_run=True)
            target = svc.target(key, quiet=True)
        failpoints.hit("actions.after-accept")
        run = svc.reactor.submit(target)
        svc.spawn(self._follow(status, vms, action, service=service, run=run))

    async def _set(
        self,
        key: Key,
        *,
        stopped: frozenset[str] | None = None,
        unmonitored: frozenset[str] | None = None,
        reboot: frozenset[str] | None = None,
        owed_service_action: str | None = None,
        settle_service_action: bool = False,
        quiet_run: bool = False,
        run_finished: bool = False,
        events: Sequence[EscEvent] = (),
    ) -> None:
        try:
            await self._service.reactor.set_flags(
                key[0],
                key[1],
                stopped=stopped,
                unmonitored=unmonitored,
                reboot=reboot,
                owed_service_action=owed_service_action,
                settle_service_action=settle_service_action,
                quiet_run=quiet_run,
                run_finished=run_finished,
                events=events,
            )
        except LookupError:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"deployment {key[0]}/{key[1]} has no deployed VM yet",
            ) from None

    async def _follow(
        self,
        status: DeploymentRecord,
        vms: tuple[VmRecord, ...],
        action: ActionType | None,
        *,
        service: bool,
        run: Awaitable[RunOutcome] | None = None,
    ) -> None:
        """After the run: owed VM events (no step was needed), then the service event.

        ``run`` is the outcome of the action's own run (:meth:`Reactor.submit`): an edit
        committed while it was going on has a run of its own after it, which must not be
        mistaken for the action's (a later run without a step would log the action's VM
        event a second time). The events are logged once the deployment is idle, with the
        end of the quiet run. ``action`` ``None``: a vmAction's run a restart finished (its
        VM events are the reactor's), only its end is recorded.
        """
        reactor = self._service.reactor
        outcome: RunOutcome | None
        if run is not None:
            try:
                outcome = await run
            except asyncio.CancelledError:  # the reactor stopped before the run ended
                outcome = None
        await reactor.wait(status.tenant, status.name)
        if run is None:
            outcome = reactor.last_outcome(status.tenant, status.name)
        events: list[EscEvent] = []
        if action is not None and outcome is not None and outcome.ok and outcome.steps == 0:
            events += [self._vm_event(status, vm, action) for vm in vms]
        if service and action is not None:
            events.append(self._service_event(status, action, outcome))
        # One transaction: the events, the end of the quiet run (a restart must not finish it
        # again) and, for a serviceAction, the settled debt recorded when it was accepted.
        key = (status.tenant, status.name)
        try:
            await self._set(key, run_finished=True, settle_service_action=service, events=events)
        except RpcError:  # the deployment is gone meanwhile: nothing left to settle
            if events:
                await self._service.store.emit(events)

    async def settle_owed(self, records: Iterable[DeploymentRecord]) -> None:
        """At start-up: the SERVICE_* events that a crash kept from being logged.

        The VM events of the interrupted run are owed by the reactor's resume; the service
        event is sent once that run is over, as it would have been.
        """
        for record in records:
            if record.owed_service_action is None and not record.quiet_run:
                continue
            status = self._service.reactor.status(record.tenant, record.name)
            if status is None:
                continue
            if record.owed_service_action is None:  # a vmAction's: nothing but its end
                self._service.spawn(self._follow(status, (), None, service=False))
                continue
            action = ActionType(record.owed_service_action)
            self._service.spawn(self._follow(status, (), action, service=True))

    def _vm_event(self, status: DeploymentRecord, vm: VmRecord, action: ActionType) -> EscEvent:
        return EscEvent.success(
            _VM_EVENT[action],
            _VM_MESSAGE[action].format(name=vm.identity.name),
            depname=status.name,
            tenant=status.tenant,
            tenant_id=status.tenant,
            depid=status.depid,
            vm_group=vm.identity.group,
            vm_source=vm_details(
                identity=vm.identity,
                connector_id=vm.connector_id,
                vim_project=vm.vim_project,
                state=vm.observed,
            ),
        )

    @staticmethod
    def _service_event(
        status: DeploymentRecord, action: ActionType, outcome: RunOutcome | None
    ) -> EscEvent:
        event_type, verb = _SERVICE_EVENT[action]
        if outcome is not None and outcome.ok:
            return EscEvent.success(
                event_type,
                f"Service group [{status.name}] {verb} successfully.",
                depname=status.name,
                tenant=status.tenant,
                tenant_id=status.tenant,
                depid=status.depid,
            )
        reason = outcome.reason if outcome is not None else "the run did not complete"
        return EscEvent.failure(
            event_type,
            f"Service group [{status.name}] {verb} with errors: {reason}",
            depname=status.name,
            tenant=status.tenant,
            tenant_id=status.tenant,
            depid=status.depid,
        )
