"""plan(desired, observed) -> Plan: the one place lifecycle decisions are made.

A pure function, as kopf's cause detection is: no I/O, no clock, the same inputs always give the
same plan, so every rule is a table test. The reactor calls it again after every step, so a plan
only has to be right for the current observation; it never has to remember progress.

Rules (docs/lifecycle.md explains them):

* A VM is the same VM wherever its name appears; two connectors on one host see one VM.
* Never two running copies: a VM is created or started on its target only once every other
  copy is gone or stopped; when the source host does not answer, the move is planned with
  source ``UNREACHABLE`` and the reactor's proof gate (:mod:`esc_orch.reconcile.proof`)
  decides when it may start (fenced, confirmed down, or the shared disk's lock taken).
* A stale copy on a host the VM left is deleted with ``keep_disk`` when its disk is on the
  cluster volume, so the disk the VM now runs on is never touched.
* What the VIM cannot change in place (image, flavor, interfaces, VIM extensions) re-creates
  the VM under the same identity; a locator or storage change moves it.
"""

from __future__ import annotations

from collections.abc import Iterable

from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    Blocked,
    CreateVm,
    DeleteReason,
    DeleteVm,
    MigrateVm,
    MigrationMode,
    Plan,
    PowerOff,
    PowerOn,
    RecreateVm,
    Report,
    SourceState,
    source_power,
)
from esc_orch.model.events import EventType, VmUpdateType
from esc_orch.model.failure import HostUnreachable
from esc_orch.model.vim import PowerState, Storage, VmSpec, VmState
from esc_orch.reconcile.desired import DesiredState, DesiredVm
from esc_orch.reconcile.identity import VmIdentity, parse_vm_name
from esc_orch.reconcile.observed import AppliedVm, Copy, Observation

# Execution order: free hosts and disk locks first, then move, re-create, create, adjust.
_PHASE: dict[type, int] = {
    DeleteVm: 0,
    MigrateVm: 2,
    RecreateVm: 3,
    CreateVm: 4,
    AcceptSpec: 5,
    PowerOn: 5,
    PowerOff: 5,
    Blocked: 9,
}
_RECREATE = (
    VmUpdateType.IMAGE_UPDATED,
    VmUpdateType.FLAVOR_UPDATED,
    VmUpdateType.INTERFACE_ADDED,
    VmUpdateType.INTERFACE_DELETED,
    VmUpdateType.INTERFACE_UPDATED,
    VmUpdateType.EXTENSIONS_UPDATED,
)
MB_PER_GB = 1024


def _same_disk(a: int, b: int) -> bool:
    """VIMs size disks in GB (CSP does): compare rounded up to whole GB."""
    return -(-a // MB_PER_GB) == -(-b // MB_PER_GB)


def differences(spec: VmSpec, state: VmState, applied: VmSpec | None) -> tuple[VmUpdateType, ...]:
    """What differs between the wanted spec and the VM, most significant first.

    What the VIM reports is compared with the VIM; what it does not report (VLANs, serial
    ports, day-0...) with the spec last applied, when known.
    """
    found: set[VmUpdateType] = set()
    if state.image and state.image != spec.image:
        found.add(VmUpdateType.IMAGE_UPDATED)
    if (state.vcpus and state.vcpus != spec.vcpus) or (
        state.memory_mb and state.memory_mb != spec.memory_mb
    ):
        found.add(VmUpdateType.FLAVOR_UPDATED)
    if state.disk_mb and not _same_disk(state.disk_mb, spec.disk_mb):
        found.add(VmUpdateType.FLAVOR_UPDATED)
    seen = {n.nicid: n for n in state.interfaces}
    wanted = {n.nicid: n for n in spec.interfaces}
    if wanted.keys() - seen.keys():
        found.add(VmUpdateType.INTERFACE_ADDED)
    if seen.keys() - wanted.keys():
        found.add(VmUpdateType.INTERFACE_DELETED)
    for nicid in wanted.keys() & seen.keys():
        want, have = wanted[nicid], seen[nicid]
        ip_differs = None not in (want.ip_address, have.ip_address) and (
            want.ip_address != have.ip_address
        )
        if want.network != have.network or want.type != have.type or ip_differs:
            found.add(VmUpdateType.INTERFACE_UPDATED)
    if applied is not None:
        before = {n.nicid: n for n in applied.interfaces}
        if any(before.get(i) not in (None, wanted[i]) for i in wanted.keys() & seen.keys()):
            found.add(VmUpdateType.INTERFACE_UPDATED)
        if (applied.serial_ports, applied.disk_type, applied.disk_resize) != (
            spec.serial_ports,
            spec.disk_type,
            spec.disk_resize,
        ):
            found.add(VmUpdateType.EXTENSIONS_UPDATED)
        if applied.day0 != spec.day0:
            found.add(VmUpdateType.CONFIG_DATA_UPDATED)
    return tuple(t for t in VmUpdateType if t in found)


def _by_host(copies: Iterable[Copy], prefer: str | None) -> list[Copy]:
    """One copy per host: the one seen through ``prefer`` if any, else the first connector."""
    chosen: dict[str, Copy] = {}
    for c in sorted(copies, key=lambda c: (c.connector_id != prefer, c.connector_id)):
        chosen.setdefault(c.host, c)
    return sorted(chosen.values(), key=lambda c: c.connector_id)


def _stale(vm: VmIdentity, copy: Copy) -> DeleteVm:
    return DeleteVm(
        vm=vm,
        connector_id=copy.connector_id,
        keep_disk=copy.state.storage is Storage.GLUSTER,
        reason=DeleteReason.STALE_COPY,
        report=None,
    )


def _in_place(d: DesiredVm, cur: Copy, applied: AppliedVm | None) -> list[Action]:
    """The VM is on its target host: adjust storage, spec, locator record and power."""
    state = cur.state
    if state.storage is not d.spec.storage:
        return [
            MigrateVm(
                vm=d.identity,
                source_connector_id=d.connector_id,
                source=source_power(state.power),
                source_storage=state.storage,
                connector_id=d.connector_id,
                vim_project=d.vim_project,
                spec=d.spec,
                mode=MigrationMode.COPY_DISK,
            )
        ]
    changes = differences(d.spec, state, applied.spec if applied else None)
    rebuild = tuple(t for t in changes if t in _RECREATE)
    if rebuild:
        return [
            RecreateVm(
                vm=d.identity,
                connector_id=d.connector_id,
                vim_project=d.vim_project,
                spec=d.spec,
                keep_disk=VmUpdateType.IMAGE_UPDATED not in rebuild,
                report=Report(event=EventType.VM_UPDATED, update_types=rebuild),
            )
        ]
    out: list[Action] = []
    accepted: list[VmUpdateType] = []
    if applied is not None and (applied.connector_id, applied.vim_project) != (
        d.connector_id,
        d.vim_project,
    ):
        accepted.append(VmUpdateType.LOCATOR_UPDATED)
    if VmUpdateType.CONFIG_DATA_UPDATED in changes:
        accepted.append(VmUpdateType.CONFIG_DATA_UPDATED)
    if accepted or applied is None:
        report = Report(event=EventType.VM_UPDATED, update_types=tuple(accepted))
        out.append(
            AcceptSpec(
                vm=d.identity,
                connector_id=d.connector_id,
                vim_project=d.vim_project,
                spec=d.spec,
                report=report if accepted else None,
            )
        )
    if d.power_on and state.power is PowerState.STOPPED:
        out.append(PowerOn(vm=d.identity, connector_id=d.connector_id))
    elif not d.power_on and state.power is PowerState.RUNNING:
        out.append(PowerOff(vm=d.identity, connector_id=d.connector_id))
    return out


def _migrate(
    d: DesiredVm, *, source: str, state: SourceState, storage: Storage, shared: bool
) -> MigrateVm:
    return MigrateVm(
        vm=d.identity,
        source_connector_id=source,
        source=state,
        source_storage=storage,
        connector_id=d.connector_id,
        vim_project=d.vim_project,
        spec=d.spec,
        mode=MigrationMode.SHARED_DISK if shared else MigrationMode.REDEPLOY,
    )


def _plan_desired(d: DesiredVm, obs: Observation, notes: list[str]) -> list[Action]:
    target = obs.view(d.connector_id)
    if target is None or not target.reachable:
        return [
            Blocked(
                vm=d.identity,
                connector_id=d.connector_id,
                failure=HostUnreachable(
                    connector_id=d.connector_id,
                    vm_name=d.name,
                    detail=target.detail if target is not None else None,
                ),
            )
        ]
    applied = obs.applied.get(d.name)
    copies = obs.copies(d.name)
    here = [c for c in copies if c.host == target.host_key]
    away = _by_host(
        (c for c in copies if c.host != target.host_key),
        applied.connector_id if applied else None,
    )
    if here:
        cur = next((c for c in here if c.connector_id == d.connector_id), here[0])
        return [_stale(d.identity, c) for c in away] + _in_place(d, cur, applied)
    gluster = d.spec.storage is Storage.GLUSTER
    if away:
        running = [c for c in away if c.state.power is PowerState.RUNNING]
        src = running[0] if running else away[0]
        stale: list[Action] = [_stale(d.identity, c) for c in away if c is not src]
        shared = gluster and src.state.storage is Storage.GLUSTER
        move = _migrate(
            d,
            source=src.connector_id,
            state=source_power(src.state.power),
            storage=src.state.storage,
            shared=shared,
        )
        return [*stale, move]
    if applied is None or applied.connector_id == d.connector_id:
        return [
            CreateVm(
                vm=d.identity, connector_id=d.connector_id, vim_project=d.vim_project, spec=d.spec
            )
        ]
    # Placed elsewhere before, seen nowhere now: the source is gone, or does not answer.
    was = applied.spec.storage
    if obs.reachable(applied.connector_id):
        return [
            _migrate(
                d,
                source=applied.connector_id,
                state=SourceState.ABSENT,
                storage=was,
                shared=gluster and was is Storage.GLUSTER,
            )
        ]
    shared = gluster and was is Storage.GLUSTER
    notes.append(
        f"{applied.connector_id} is unreachable: a stale copy of {d.name} may remain there; "
        "it is removed" + (" (disk kept)" if shared else "") + " once the host answers again"
    )
    # The move waits for proof that the old copy cannot run (reconcile.proof, in the reactor).
    return [
        _migrate(
            d,
            source=applied.connector_id,
            state=SourceState.UNREACHABLE,
            storage=was,
            shared=shared,
        )
    ]


def _plan_retired(vm: VmIdentity, obs: Observation, reason: DeleteReason) -> list[Action]:
    """Delete every copy: others first (shared disk kept), the last one with its disk."""
    applied = obs.applied.get(vm.name)
    home = applied.connector_id if applied else None
    copies = _by_host(obs.copies(vm.name), home)
    report = Report(event=EventType.VM_UNDEPLOYED) if reason is DeleteReason.UNDEPLOY else None
    if home is not None and not obs.reachable(home):
        blocked = Blocked(
            vm=vm,
            connector_id=home,
            failure=HostUnreachable(connector_id=home, vm_name=vm.name, deleting=True),
            report=report,
        )
        return [*(_stale(vm, c) for c in copies), blocked]
    if not copies:
        return []
    last = next((c for c in copies if c.connector_id == home), copies[-1])
    out: list[Action] = [_stale(vm, c) for c in copies if c is not last]
    out.append(
        DeleteVm(
            vm=vm, connector_id=last.connector_id, keep_disk=False, reason=reason, report=report
        )
    )
    return out


def _orphans(desired: DesiredState, obs: Observation) -> list[VmIdentity]:
    owned = {i.name for i in desired.identities()} | obs.foreign
    found = []
    for name in sorted(obs.names() - owned):
        parsed = parse_vm_name(name, deployment=desired.deployment)
        if parsed is None or parsed.group not in desired.groups:
            continue
        found.append(
            VmIdentity(
                deployment=desired.deployment,
                group=parsed.group,
                index=parsed.index,
                uuid=parsed.uuid,
                vmid="",
            )
        )
    return found


def plan(*, desired: DesiredState, observed: Observation) -> Plan:
    """The next steps that bring ``observed`` to ``desired``; ``Plan.done`` when converged."""
    actions: list[Action] = []
    notes: list[str] = []
    for vm in _orphans(desired, observed):
        actions += _plan_retired(vm, observed, DeleteReason.ORPHAN)
    for vm in desired.retired:
        actions += _plan_retired(vm, observed, DeleteReason.UNDEPLOY)
    for d in desired.vms:
        actions += _plan_desired(d, observed, notes)
    ordered = sorted(enumerate(actions), key=lambda ia: (_PHASE[type(ia[1])], ia[0]))
    return Plan(actions=tuple(a for _, a in ordered), notes=tuple(notes))
