"""Carry out one planned action through the connectors, retrying what may pass.

Each VIM call is retried on :class:`TemporaryVimError` with exponential backoff on an injected
sleep (tests never wait). Anything that will not pass by waiting becomes :class:`StepFailed`
with a sentence a person can act on. The order of calls inside a move is where "never two
running copies" is enforced: the source is confirmed stopped before it is deleted and before
the target starts, and when the source does not answer, the target's start is fenced by the
cluster's disk lock (a :class:`VimConflict` there is waited on, then reported).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

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
from esc_orch.model.vim import Capability, PowerState, Storage, VmState
from esc_orch.reactor.observe import ConnectorProvider
from esc_orch.vim.errors import (
    CapabilityNotSupported,
    PermanentVimError,
    TemporaryVimError,
    VimAuthError,
    VimConflict,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import VimConnector
from esc_orch.vim.retry import RetryPolicy, Sleep, with_retries

T = TypeVar("T")


class StepFailed(Exception):
    """The action cannot be completed; ``reason`` says what to do about it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    def _connector(self, connector_id: str) -> VimConnector:
        try:
            return self.connectors(connector_id)
        except (LookupError, ValueError, VimError) as exc:
            raise StepFailed(
                f"VIM connector {connector_id} cannot be used ({exc}): check its configuration"
            ) from exc

    async def _call(
        self,
        connector_id: str,
        what: str,
        call: Callable[[VimConnector], Awaitable[T]],
        *,
        fence: str | None = None,
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

        try:
            return await with_retries(once, policy=self.policy, sleep=self.sleep)
        except TemporaryVimError as exc:
            if fence is not None and isinstance(exc.__cause__, VimConflict):
                raise StepFailed(f"{fence} ({exc})") from exc
            raise StepFailed(
                f"{what} on VIM connector {connector_id} still failed after "
                f"{self.policy.attempts} tries ({exc}): check that the host is up and reachable"
            ) from exc
        except VimAuthError as exc:
            raise StepFailed(
                f"VIM connector {connector_id} rejected its credentials ({exc}): fix the "
                f"users/credentials of vim_connector {connector_id}"
            ) from exc
        except CapabilityNotSupported as exc:
            raise StepFailed(
                f"{what}: VIM connector {connector_id} does not support {exc.capability}; "
                "use a connector that declares it (e.g. with cluster_name for shared storage)"
            ) from exc
        except PermanentVimError as exc:
            raise StepFailed(f"{what} on VIM connector {connector_id} failed: {exc}") from exc
        except VimNotFound:
            raise
        except VimError as exc:
            raise StepFailed(f"{what} on VIM connector {connector_id} failed: {exc}") from exc

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
            raise StepFailed(
                f"{name} is still running on VIM connector {connector_id} after power off: "
                "stop it on the host, then send the update again"
            )

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
            state = await self._call(
                target,
                f"copying the disk of {name} from {a.source_storage} to {a.spec.storage}",
                lambda c: c.copy_disk(
                    name=name, from_storage=a.source_storage, to_storage=a.spec.storage
                ),
            )
            if a.source is SourceState.RUNNING:
                state = await self._call(
                    target, f"starting {name}", lambda c: c.power_on(name=name)
                )
            return state
        if a.mode is MigrationMode.REDEPLOY and a.source is SourceState.UNREACHABLE:
            raise StepFailed(f"{name}: its local disk is on {source}, which is unreachable")
        if present:
            await self._stop(source, name)
        if a.mode is MigrationMode.SHARED_DISK and present:
            await self._delete(source, name, keep_disk=True)
        fence = f"the disk of {name} is still in use on another host of the cluster" + (
            f" ({source} is unreachable and may still be running it): power that host off "
            "or bring it back, then send the update again"
            if a.source is SourceState.UNREACHABLE
            else ": stop the VM there, then send the update again"
        )
        state = await self._call(
            target,
            f"creating {name}",
            lambda c: c.ensure_vm(spec=a.spec),
            fence=fence if a.spec.storage is Storage.GLUSTER else None,
        )
        if a.mode is MigrationMode.REDEPLOY and present:
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
                await self._delete(action.connector_id, name, keep_disk=action.keep_disk)
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
                raise StepFailed(action.reason)

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
