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

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from esc_orch import failpoints
from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    Blocked,
    CreateVm,
    DeleteVm,
    FenceHost,
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
    RolledBack,
    VimRejected,
    VmStillRunning,
    describe,
)
from esc_orch.model.vim import Capability, PowerState, Storage, VmSpec, VmState
from esc_orch.reactor.observe import ConnectorProvider
from esc_orch.reconcile.proof import PutBack, rollback_decision, target_failure
from esc_orch.vim.errors import (
    CapabilityNotSupported,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimDiskInUse,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import Connector, ProgressCallback
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
        retry_conflict: bool = True,
    ) -> T:
        """Run ``call`` with retries; ``fence``: a disk-lock conflict is waited on, then this
        (at once when not ``retry_conflict``: the proof gate decides when to try again)."""
        connector = self._connector(connector_id)

        async def once() -> T:
            try:
                return await call(connector)
            except VimDiskInUse as exc:
                if fence is None:
                    raise
                if not retry_conflict:
                    raise StepFailed(replace(fence, detail=str(exc))) from exc
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
            if fence is not None and isinstance(exc.__cause__, VimDiskInUse):
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

    async def _migrate(
        self,
        a: MigrateVm,
        *,
        proven: bool,
        ports: Mapping[int, str | None],
        progress: ProgressCallback | None = None,
    ) -> VmState:
        name, source, target = a.vm.name, a.source_connector_id, a.connector_id
        spec = a.spec
        if ports and Capability.PORT_IDS in self._connector(target).capabilities:
            spec = spec.with_port_ids(ports)
        present = a.source in (SourceState.RUNNING, SourceState.STOPPED)
        if a.mode is MigrationMode.COPY_DISK:
            await self._stop(target, name)
            failpoints.hit("lifecycle.between-calls")
            state = await self._call(
                target,
                f"copying the disk of {name} from {a.source_storage} to {a.spec.storage}",
                lambda c: c.copy_disk(
                    name=name,
                    from_storage=a.source_storage,
                    to_storage=a.spec.storage,
                    progress=progress,
                ),
            )
            failpoints.hit("move.disk-copied")
            if a.source is SourceState.RUNNING:
                failpoints.hit("lifecycle.between-calls")
                state = await self._call(
                    target, f"starting {name}", lambda c: c.power_on(name=name)
                )
            return state
        silent = a.source is SourceState.UNREACHABLE
        if a.mode is MigrationMode.REDEPLOY and silent and not proven:
            raise StepFailed(DiskUnfenced(vm_name=name, connector_id=source, storage="local"))
        if present:
            await self._stop(source, name)
            failpoints.hit("move.source-stopped")
            failpoints.hit("lifecycle.between-calls")
        if a.mode is MigrationMode.SHARED_DISK and present:
            await self._delete(source, name, keep_disk=True)
            failpoints.hit("move.source-removed")
            failpoints.hit("lifecycle.between-calls")
        fence = DiskHeld(
            vm_name=name,
            connector_id=target,
            unreachable_source=source if a.source is SourceState.UNREACHABLE else None,
        )
        guarded = silent and a.spec.storage is Storage.GLUSTER
        try:
            state = await self._call(
                target,
                f"creating {name}",
                lambda c: c.ensure_vm(spec=spec),
                fence=fence if a.spec.storage is Storage.GLUSTER else None,
                retry_conflict=not silent,
            )
            if guarded and state.power is not PowerState.RUNNING:
                # Found defined but not running (a refused start whose clean-up was lost):
                # its start has not taken the disk lock, so nothing is proven until it does.
                state = await self._call(
                    target,
                    f"starting {name}",
                    lambda c: c.power_on(name=name),
                    fence=fence,
                    retry_conflict=False,
                )
        except StepFailed as exc:
            if guarded and isinstance(exc.failure, DiskHeld):
                await self._remove_refused(target, name)
            if not present:
                raise
            await self._roll_back(a, spec, exc.failure)
            raise
        failpoints.hit("move.target-created")
        if a.mode is MigrationMode.REDEPLOY and present:
            failpoints.hit("lifecycle.between-calls")  # two copies now, the source stopped
            keep = a.source_storage is Storage.GLUSTER
            await self._delete(source, name, keep_disk=keep)
        return state

    async def _remove_refused(self, target: str, name: str) -> None:
        """The disk lock refused the start on ``target``: no copy of ``name`` may stay defined
        there while the source may still run it (the connector removes what its create made;
        this covers a clean-up of its that was lost). The shared disk is kept; a failure here
        is logged, the refusal is what the step reports, and the next try removes it again."""
        try:
            await self._delete(target, name, keep_disk=True)
        except StepFailed as exc:
            log.warning(
                "could not remove the copy of %s the disk lock refused on %s: %s",
                name,
                target,
                exc.reason,
                extra={"vm": name, "connector": target},
            )

    async def _roll_back(self, a: MigrateVm, spec: VmSpec, failure: Failure) -> None:
        """The target could not take the VM and the source answers: put it back there
        (:func:`esc_orch.reconcile.proof.rollback_decision`), then raise :class:`StepFailed`
        with :class:`RolledBack`, naming the target's real failure."""
        name, source, target = a.vm.name, a.source_connector_id, a.connector_id
        shared = a.mode is MigrationMode.SHARED_DISK
        decision = rollback_decision(
            source=source,
            target=target,
            cause=target_failure(failure),
            source_answers=True,
            vm_on_source=not shared,
            target_has_copy=True,
            disk_shared=shared,
            was_running=a.source is SourceState.RUNNING,
        )
        if not isinstance(decision, PutBack):
            return
        log.warning(
            "moving %s to %s failed (%s): putting it back on %s",
            name,
            target,
            decision.cause,
            source,
            extra={"vm": name, "connector": source},
        )
        if decision.remove_from_target:
            with contextlib.suppress(VimNotFound, StepFailed):
                await self._delete(target, name, keep_disk=decision.keep_target_disk)
        if decision.recreate_on_source:
            await self._call(source, f"re-creating {name}", lambda c: c.ensure_vm(spec=spec))
        if decision.restart:
            await self._call(source, f"starting {name}", lambda c: c.power_on(name=name))
        raise StepFailed(
            RolledBack(
                vm_name=name,
                connector_id=source,
                target_connector_id=target,
                target_failure=describe(failure),
                restarted=decision.restart,
            )
        ) from None

    async def run(
        self,
        action: Action,
        *,
        proven: bool = False,
        port_ids: Mapping[int, str | None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> StepResult:
        """Do ``action``; raises :class:`StepFailed` or :class:`Replan`.

        ``proven``: a move away from a silent source has its proof (the proof gate's
        ``MayStart``); without it such a move of a local disk is refused. ``port_ids``: the
        interfaces' port ids where the VM ran, asked for on the target of a move when its
        connector declares :attr:`Capability.PORT_IDS`.
        """
        try:
            return await self._run(action, proven=proven, ports=port_ids or {}, progress=progress)
        except VimNotFound as exc:
            raise Replan(str(exc)) from exc

    async def _run(
        self,
        action: Action,
        *,
        proven: bool,
        ports: Mapping[int, str | None],
        progress: ProgressCallback | None,
    ) -> StepResult:
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
                state = await self._migrate(action, proven=proven, ports=ports, progress=progress)
                return StepResult(state=state)
            case PowerOn() | PowerOff() | Reboot():
                return StepResult(state=await self._power(action))
            case AcceptSpec() | FenceHost():
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
