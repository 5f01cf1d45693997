"""Carry out one planned action through the connectors, retrying what may pass.

Each VIM call is retried on :class:`TemporaryVimError` with exponential backoff on an injected
sleep (tests never wait). Anything that will not pass by waiting becomes :class:`StepFailed`
carrying a typed :data:`~esc_orch.model.failure.Failure` (its sentence is rendered by
:func:`esc_orch.model.failure.describe`, nowhere here). The order of calls inside a move
is where "never two running copies" is enforced: the source is confirmed stopped before it
is deleted and before the target starts, and when the source does not answer, the target's
start is fenced by the cluster's disk lock (a :class:`VimConflict` there is waited on, then
reported).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from esc_orch import failpoints
from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    Blocked,
    CreateVm,
    DeleteVm,
    MigrateVm,
    MigrationMode,
    PowerOff,
    PowerOn,
    Reboot,
    RecreateVm,
    SourceState,
)
from esc_orch.model.failure import (
    CapabilityMissing,
    Capacity,
    ConnectorUnusable,
    CredentialsRefused,
    DiskHeld,
    DiskUnfenced,
    Failure,
    RetriesExhausted,
    VimRejected,
    VmStillRunning,
    describe,
)
from esc_orch.model.vim import Capability, PowerState, Storage, VmState
from esc_orch.reactor.observe import ConnectorProvider
from esc_orch.vim.errors import (
    CapabilityNotSupported,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import Connector
from esc_orch.vim.retry import RetryPolicy, Sleep, with_retries

T = TypeVar("T")
log = logging.getLogger(__name__)


class StepFailed(Exception):
    """The action cannot be completed; ``failure`` says why (``reason``: its sentence)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(describe(failure))
        self.failure = failure

    @property
    def reason(self) -> str:
        return describe(self.failure)


class Replan(Exception):
    """The VM was not where the plan expected: observe again, nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """The VM as the step left it (``None`` when deleted or untouched)."""

    state: VmState | None = None


@dataclass(frozen=True, kw_only=True)
class Executor:
    connectors: ConnectorProvider
    policy: RetryPolicy
    sleep: Sleep

    def _connector(self, connector_id: str) -> Connector:
        try:
            return self.connectors(connector_id)
        except (LookupError, ValueError, VimError) as exc:
            raise StepFailed(ConnectorUnusable(connector_id=connector_id, detail=str(exc))) from exc

    async def _call(
        self,
        connector_id: str,
        what: str,
        call: Callable[[Connector], Awaitable[T]],
        *,
        fence: DiskHeld | None = None,
    ) -> T:
        """Run ``call`` with retries; ``fence``: a disk-lock conflict is waited on, then this."""
        connector = self._connector(connector_id)

        async def once() -> T:
            try:
                return await call(connector)
            except VimConflict as exc:
                if fence is None:
                    raise
                raise TemporaryVimError(str(exc), retry_after=self.policy.base_delay) from exc

        async def sleep(delay: float) -> None:
            log.info(
                "retrying %s in %.1f s",
                what,
                delay,
                extra={"connector": connector_id, "wait_s": round(delay, 3)},
            )
            await self.sleep(delay)

        try:
            return await with_retries(once, policy=self.policy, sleep=sleep)
        except TemporaryVimError as exc:
            if fence is not None and isinstance(exc.__cause__, VimConflict):
                raise StepFailed(replace(fence, detail=str(exc))) from exc
            raise StepFailed(
                RetriesExhausted(
                    what=what,
                    connector_id=connector_id,
                    attempts=self.policy.attempts,
                    detail=str(exc),
                )
            ) from exc
        except VimAuthError as exc:
            raise StepFailed(
                CredentialsRefused(connector_id=connector_id, detail=str(exc))
            ) from exc
        except CapabilityNotSupported as exc:
            raise StepFailed(
                CapabilityMissing(what=what, connector_id=connector_id, capability=exc.capability)
            ) from exc
        except VimCapacityError as exc:
            raise StepFailed(
                Capacity(what=what, connector_id=connector_id, detail=str(exc))
            ) from exc
        except VimNotFound:
            raise
        except VimError as exc:
            raise StepFailed(
                VimRejected(what=what, connector_id=connector_id, detail=str(exc))
            ) from exc

    async def _stop(self, connector_id: str, name: str) -> None:
        """Power off and confirm; a missing VM is stopped enough."""
        if Capability.POWER not in self._connector(connector_id).capabilities:
            return  # delete_vm stops it
        try:
            state = await self._call(
                connector_id, f"stopping {name}", lambda c: c.power_off(name=name)
            )
        except VimNotFound:
            return
        if state.power is PowerState.RUNNING:
            raise StepFailed(VmStillRunning(vm_name=name, connector_id=connector_id))

    async def _delete(self, connector_id: str, name: str, *, keep_disk: bool) -> None:
        await self._call(
            connector_id,
            f"deleting {name}",
            lambda c: c.delete_vm(name=name, keep_disk=keep_disk),
        )

    async def _migrate(self, a: MigrateVm) -> VmState:
        name, source, target = a.vm.name, a.source_connector_id, a.connector_id
        present = a.source in (SourceState.RUNNING, SourceState.STOPPED)
        if a.mode is MigrationMode.COPY_DISK:
            await self._stop(target, name)
            failpoints.hit("lifecycle.between-calls")
            state = await self._call(
                target,
                f"copying the disk of {name} from {a.source_storage} to {a.spec.storage}",
                lambda c: c.copy_disk(
                    name=name, from_storage=a.source_storage, to_storage=a.spec.storage
                ),
            )
            if a.source is SourceState.RUNNING:
                failpoints.hit("lifecycle.between-calls")
                state = await self._call(
                    target, f"starting {name}", lambda c: c.power_on(name=name)
                )
            return state
        if a.mode is MigrationMode.REDEPLOY and a.source is SourceState.UNREACHABLE:
            raise StepFailed(DiskUnfenced(vm_name=name, connector_id=source, storage="local"))
        if present:
            await self._stop(source, name)
            failpoints.hit("lifecycle.between-calls")
        if a.mode is MigrationMode.SHARED_DISK and present:
            await self._delete(source, name, keep_disk=True)
            failpoints.hit("lifecycle.between-calls")
        fence = DiskHeld(
            vm_name=name,
            connector_id=target,
            unreachable_source=source if a.source is SourceState.UNREACHABLE else None,
        )
        state = await self._call(
            target,
            f"creating {name}",
            lambda c: c.ensure_vm(spec=a.spec),
            fence=fence if a.spec.storage is Storage.GLUSTER else None,
        )
        if a.mode is MigrationMode.REDEPLOY and present:
            failpoints.hit("lifecycle.between-calls")  # two copies now, the source stopped
            keep = a.source_storage is Storage.GLUSTER
            await self._delete(source, name, keep_disk=keep)
        return state

    async def run(self, action: Action) -> StepResult:
        """Do ``action``; raises :class:`StepFailed` or :class:`Replan`."""
        try:
            return await self._run(action)
        except VimNotFound as exc:
            raise Replan(str(exc)) from exc

    async def _run(self, action: Action) -> StepResult:
        name = action.vm.name
        match action:
            case CreateVm():
                spec = action.spec
                state = await self._call(
                    action.connector_id, f"creating {name}", lambda c: c.ensure_vm(spec=spec)
                )
                return StepResult(state=state)
            case DeleteVm():
                await self._delete(action.connector_id, name, keep_disk=action.keep_disk)
                return StepResult()
            case RecreateVm():
                spec = action.spec
                await self._stop(action.connector_id, name)
                failpoints.hit("lifecycle.between-calls")
                await self._delete(action.connector_id, name, keep_disk=action.keep_disk)
                failpoints.hit("lifecycle.between-calls")
                state = await self._call(
                    action.connector_id, f"re-creating {name}", lambda c: c.ensure_vm(spec=spec)
                )
                return StepResult(state=state)
            case MigrateVm():
                return StepResult(state=await self._migrate(action))
            case PowerOn() | PowerOff() | Reboot():
                return StepResult(state=await self._power(action))
            case AcceptSpec():
                return StepResult()
            case Blocked():
                raise StepFailed(action.failure)

    async def _power(self, action: PowerOn | PowerOff | Reboot) -> VmState:
        name = action.vm.name
        try:
            if isinstance(action, PowerOn):
                return await self._call(
                    action.connector_id, f"starting {name}", lambda c: c.power_on(name=name)
                )
            if isinstance(action, PowerOff):
                return await self._call(
                    action.connector_id, f"stopping {name}", lambda c: c.power_off(name=name)
                )
            return await self._call(
                action.connector_id, f"rebooting {name}", lambda c: c.reboot(name=name)
            )
        except VimNotFound as exc:
            raise Replan(str(exc)) from exc
