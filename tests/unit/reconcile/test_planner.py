"""plan(desired, observed): small tables of observation -> expected steps.

Each case names the situation; the seed's three scenarios are at the end.
"""

from __future__ import annotations

from dataclasses import replace

from esc_orch.reconcile import (
    AcceptSpec,
    Blocked,
    CreateVm,
    DeleteReason,
    DeleteVm,
    DesiredState,
    EventType,
    MigrateVm,
    MigrationMode,
    Observation,
    Plan,
    PowerOff,
    PowerOn,
    RecreateVm,
    SourceState,
    VmIdentity,
    VmUpdateType,
    plan,
    undeploy_state,
)
from esc_orch.vim import NicSpec, PowerState, SerialPortSpec, SerialType, Storage, VmSpec
from unit.reconcile.builders import (
    applied,
    desired_of,
    seed_deployment,
    state_of,
    view,
    with_group,
    with_locator,
    with_storage,
)

DEP = seed_deployment()
D = desired_of(DEP)
VM = D.vms[0]
SPEC = VM.spec
ALL = ("CSP-1", "CSP-2", "CSP-3")


def observe(*views: object, applied_on: str | None = "CSP-1", spec: VmSpec = SPEC) -> Observation:
    by_id = {v.connector_id: v for v in views}  # type: ignore[attr-defined]
    full = tuple(by_id.get(c) or view(c) for c in (*ALL, *by_id.keys() - set(ALL)))
    return Observation(
        views=full,  # type: ignore[arg-type]
        applied={SPEC.name: applied(applied_on, spec)} if applied_on else {},
    )


def kinds(p: Plan) -> list[str]:
    return [type(a).__name__ for a in p.actions]


def again(dep: object) -> DesiredState:
    return desired_of(dep, existing=D.identities(), start=50)  # type: ignore[arg-type]


# -- deploy and steady state -------------------------------------------------------


def test_fresh_deploy_creates_on_the_locator() -> None:
    p = plan(desired=D, observed=observe(applied_on=None))
    (create,) = p.actions
    assert isinstance(create, CreateVm)
    assert (create.connector_id, create.vim_project, create.spec) == ("CSP-1", "CSP-1", SPEC)
    assert create.report.event is EventType.VM_DEPLOYED


def test_converged_is_done() -> None:
    p = plan(desired=D, observed=observe(view("CSP-1", state_of(SPEC, host="csp-1"))))
    assert p.done and p.actions == () and p.notes == ()


def test_running_vm_without_memory_is_recorded_silently() -> None:
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")), applied_on=None)
    (accept,) = plan(desired=D, observed=obs).actions
    assert isinstance(accept, AcceptSpec) and accept.report is None


def test_stopped_vm_is_started() -> None:
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.STOPPED)))
    (start,) = plan(desired=D, observed=obs).actions
    assert isinstance(start, PowerOn) and start.connector_id == "CSP-1"


def test_vm_wanted_off_is_stopped() -> None:
    wanted_off = replace(D, vms=(replace(VM, power_on=False),))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    assert kinds(plan(desired=wanted_off, observed=obs)) == ["PowerOff"]
    assert isinstance(plan(desired=wanted_off, observed=obs).actions[0], PowerOff)


def test_vm_in_error_is_left_to_recovery() -> None:
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.ERROR)))
    assert plan(desired=D, observed=obs).done


# -- updates in place / re-creation ------------------------------------------------


def _update(dep: object, **state_changes: object) -> RecreateVm | AcceptSpec:
    desired = again(dep)
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1", **state_changes)))
    (action,) = plan(desired=desired, observed=obs).actions
    assert isinstance(action, RecreateVm | AcceptSpec)
    assert action.vm == VM.identity
    return action


def test_flavor_change_recreates_keeping_the_disk() -> None:
    action = _update(with_group(DEP, flavor="FLAVOR_4_8192"))
    assert isinstance(action, RecreateVm) and action.keep_disk
    assert action.report.update_types == (VmUpdateType.FLAVOR_UPDATED,)
    assert action.spec.vcpus == 4


def test_image_change_recreates_with_a_new_disk() -> None:
    action = _update(with_group(DEP, image="asav.qcow2"))
    assert isinstance(action, RecreateVm) and not action.keep_disk
    assert action.report.event is EventType.VM_UPDATED
    assert action.report.update_type is VmUpdateType.IMAGE_UPDATED


def test_disk_rounded_to_gb_by_the_vim_is_no_change() -> None:
    assert plan(
        desired=D, observed=observe(view("CSP-1", state_of(SPEC, host="csp-1", disk_mb=10240)))
    ).done
    odd = replace(D, vms=(replace(VM, spec=replace(SPEC, disk_mb=10000)),))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1", disk_mb=10240)), spec=odd.vms[0].spec)
    assert plan(desired=odd, observed=obs).done


def test_interface_added_removed_and_changed() -> None:
    extra = NicSpec(nicid=2, network="Eth3")
    cases = {
        VmUpdateType.INTERFACE_ADDED: replace(SPEC, interfaces=(*SPEC.interfaces, extra)),
        VmUpdateType.INTERFACE_DELETED: replace(SPEC, interfaces=SPEC.interfaces[:1]),
        VmUpdateType.INTERFACE_UPDATED: replace(
            SPEC, interfaces=(replace(SPEC.interfaces[0], network="Other"), SPEC.interfaces[1])
        ),
    }
    for update, spec in cases.items():
        desired = replace(D, vms=(replace(VM, spec=spec),))
        obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
        (action,) = plan(desired=desired, observed=obs).actions
        assert isinstance(action, RecreateVm), update
        assert action.report.update_types == (update,)


def test_vlan_change_is_seen_against_the_applied_spec() -> None:
    nic0 = replace(SPEC.interfaces[0], vlan=99)
    desired = replace(
        D, vms=(replace(VM, spec=replace(SPEC, interfaces=(nic0, SPEC.interfaces[1]))),)
    )
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    (action,) = plan(desired=desired, observed=obs).actions
    assert isinstance(action, RecreateVm)
    assert action.report.update_types == (VmUpdateType.INTERFACE_UPDATED,)


def test_serial_port_change_is_an_extensions_update() -> None:
    ports = (SerialPortSpec(index=0, type=SerialType.TELNET),)
    desired = replace(D, vms=(replace(VM, spec=replace(SPEC, serial_ports=ports)),))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    (action,) = plan(desired=desired, observed=obs).actions
    assert isinstance(action, RecreateVm)
    assert action.report.update_types == (VmUpdateType.EXTENSIONS_UPDATED,)


def test_day0_change_is_recorded_for_the_next_creation() -> None:
    desired = replace(D, vms=(replace(VM, spec=replace(SPEC, day0=())),))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    (action,) = plan(desired=desired, observed=obs).actions
    assert isinstance(action, AcceptSpec) and action.report is not None
    assert action.report.update_types == (VmUpdateType.CONFIG_DATA_UPDATED,)


# -- moves between hosts -----------------------------------------------------------


def test_locator_change_on_shared_storage_moves_the_disk_not() -> None:
    """Scenario 1: CSP-1 reachable, the VM moves to CSP-2 on the cluster volume."""
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    (move,) = plan(desired=desired, observed=obs).actions
    assert isinstance(move, MigrateVm)
    assert (move.source_connector_id, move.source, move.connector_id) == (
        "CSP-1",
        SourceState.RUNNING,
        "CSP-2",
    )
    assert move.mode is MigrationMode.SHARED_DISK and move.vm == VM.identity
    assert move.report.event is EventType.VM_UPDATED
    assert move.report.update_types == (VmUpdateType.LOCATOR_UPDATED,)


def test_move_resumes_from_any_intermediate_observation() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    stopped = observe(view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.STOPPED)))
    (move,) = plan(desired=desired, observed=stopped).actions
    assert isinstance(move, MigrateVm) and move.source is SourceState.STOPPED
    gone = observe()  # deleted from CSP-1 (disk kept), not yet created on CSP-2
    (move,) = plan(desired=desired, observed=gone).actions
    assert isinstance(move, MigrateVm) and move.source is SourceState.ABSENT
    arrived = observe(view("CSP-2", state_of(SPEC, host="csp-2")))  # memory not yet updated
    (accept,) = plan(desired=desired, observed=arrived).actions
    assert isinstance(accept, AcceptSpec) and accept.report is not None
    assert accept.report.update_types == (VmUpdateType.LOCATOR_UPDATED,)
    done = observe(view("CSP-2", state_of(SPEC, host="csp-2")), applied_on="CSP-2")
    assert plan(desired=desired, observed=done).done


def test_stale_copy_is_deleted_first_and_keeps_the_shared_disk() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(
        view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.STOPPED)),
        view("CSP-2", state_of(SPEC, host="csp-2", power=PowerState.STOPPED)),
        applied_on="CSP-2",
    )
    p = plan(desired=desired, observed=obs)
    assert kinds(p) == ["DeleteVm", "PowerOn"]
    delete = p.actions[0]
    assert isinstance(delete, DeleteVm)
    assert (delete.connector_id, delete.keep_disk, delete.reason) == (
        "CSP-1",
        True,
        DeleteReason.STALE_COPY,
    )
    assert delete.report is None


def test_never_two_running_copies_extra_copies_go_before_the_move() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(
        view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.STOPPED)),
        view("CSP-3", state_of(SPEC, host="csp-3")),
    )
    p = plan(desired=desired, observed=obs)
    assert kinds(p) == ["DeleteVm", "MigrateVm"]
    delete, move = p.actions
    assert isinstance(delete, DeleteVm) and delete.connector_id == "CSP-1"
    assert isinstance(move, MigrateVm) and move.source_connector_id == "CSP-3"


def test_local_disk_on_another_host_is_redeployed() -> None:
    local = with_storage(DEP, "local")
    desired = again(with_locator(local, "CSP-2"))
    spec = desired.vms[0].spec
    obs = observe(view("CSP-1", state_of(spec, host="csp-1")), spec=spec)
    (move,) = plan(desired=desired, observed=obs).actions
    assert isinstance(move, MigrateVm) and move.mode is MigrationMode.REDEPLOY
    assert move.source_storage is Storage.LOCAL


def test_unreachable_target_blocks_with_a_reason() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")), view("CSP-2", reachable=False))
    (blocked,) = plan(desired=desired, observed=obs).actions
    assert isinstance(blocked, Blocked)
    assert (
        "CSP-2 is unreachable" in blocked.reason
        and not plan(desired=desired, observed=obs).runnable
    )


# -- scenario 2: the source host does not answer ---------------------------------------


def test_scenario2_source_down_on_gluster_moves_fenced_by_the_disk_lock() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(view("CSP-1", reachable=False))
    p = plan(desired=desired, observed=obs)
    (move,) = p.actions
    assert isinstance(move, MigrateVm)
    assert (move.source, move.mode) == (SourceState.UNREACHABLE, MigrationMode.SHARED_DISK)
    assert p.notes and "stale copy" in p.notes[0]


def test_scenario2_source_down_with_a_local_disk_is_a_redeploy_waiting_for_proof() -> None:
    local = with_storage(DEP, "local")
    desired = again(with_locator(local, "CSP-2"))
    obs = observe(view("CSP-1", reachable=False), spec=desired.vms[0].spec)
    p = plan(desired=desired, observed=obs)
    (move,) = p.actions
    # The reactor's proof gate decides when it may start (fence, confirmation): not the plan.
    assert isinstance(move, MigrateVm) and move.source is SourceState.UNREACHABLE
    assert move.mode is MigrationMode.REDEPLOY and move.source_storage is Storage.LOCAL
    assert p.notes and "stale copy" in p.notes[0] and "disk kept" not in p.notes[0]


def test_scenario2_source_back_later_its_stale_copy_goes_disk_kept() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(
        view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.ERROR)),
        view("CSP-2", state_of(SPEC, host="csp-2")),
        applied_on="CSP-2",
    )
    (delete,) = plan(desired=desired, observed=obs).actions
    assert isinstance(delete, DeleteVm) and delete.keep_disk and delete.connector_id == "CSP-1"


# -- scenario 3: same host, local -> gluster through a cluster connector ---------------


def test_scenario3_local_to_gluster_on_the_same_host_copies_the_disk() -> None:
    local_spec = desired_of(with_storage(DEP, "local")).vms[0].spec
    desired = again(with_locator(DEP, "CSP-1-cluster"))  # gluster
    seen = state_of(local_spec, host="csp-1")
    obs = observe(
        view("CSP-1-local", seen),
        view("CSP-1-cluster", seen),
        applied_on="CSP-1-local",
        spec=local_spec,
    )
    (move,) = plan(desired=desired, observed=obs).actions  # no stale delete: same host
    assert isinstance(move, MigrateVm)
    assert move.mode is MigrationMode.COPY_DISK
    assert (move.source_connector_id, move.connector_id) == ("CSP-1-cluster", "CSP-1-cluster")
    assert (move.source_storage, move.spec.storage) == (Storage.LOCAL, Storage.GLUSTER)
    assert move.report.update_types == (VmUpdateType.LOCATOR_UPDATED,)


def test_scenario3_done_when_the_disk_is_on_gluster() -> None:
    desired = again(with_locator(DEP, "CSP-1-cluster"))
    seen = state_of(SPEC, host="csp-1")
    obs = observe(
        view("CSP-1-local", seen), view("CSP-1-cluster", seen), applied_on="CSP-1-cluster"
    )
    assert plan(desired=desired, observed=obs).done


# -- undeploy, scale in, orphans --------------------------------------------------------


def test_undeploy_deletes_with_the_disk_and_reports() -> None:
    gone = undeploy_state(tenant="name1", deployment="dep", known=D.identities())
    (delete,) = plan(
        desired=gone, observed=observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    ).actions
    assert isinstance(delete, DeleteVm)
    assert (delete.keep_disk, delete.reason) == (False, DeleteReason.UNDEPLOY)
    assert delete.report is not None and delete.report.event is EventType.VM_UNDEPLOYED


def test_undeploy_removes_stale_copies_first_shared_disk_last() -> None:
    gone = undeploy_state(tenant="name1", deployment="dep", known=D.identities())
    obs = observe(
        view("CSP-1", state_of(SPEC, host="csp-1", power=PowerState.STOPPED)),
        view("CSP-2", state_of(SPEC, host="csp-2")),
        applied_on="CSP-2",
    )
    first, last = plan(desired=gone, observed=obs).actions
    assert isinstance(first, DeleteVm) and isinstance(last, DeleteVm)
    assert (first.connector_id, first.keep_disk, first.report) == ("CSP-1", True, None)
    assert (last.connector_id, last.keep_disk) == ("CSP-2", False)


def test_undeploy_on_an_unreachable_host_is_blocked_and_done_when_nothing_is_left() -> None:
    gone = undeploy_state(tenant="name1", deployment="dep", known=D.identities())
    (blocked,) = plan(desired=gone, observed=observe(view("CSP-1", reachable=False))).actions
    assert isinstance(blocked, Blocked) and "CSP-1 is unreachable" in blocked.reason
    assert plan(desired=gone, observed=observe()).done


def test_orphans_named_like_ours_are_deleted_foreign_ones_never() -> None:
    orphan_name = f"dep_Group1_0_{'9' * 8}-0000-4000-8000-000000000099"
    other = replace(SPEC, name=orphan_name)
    unrelated = replace(SPEC, name=f"dep_Other_0_{'9' * 8}-0000-4000-8000-000000000099")
    obs = observe(
        view(
            "CSP-1",
            state_of(SPEC, host="csp-1"),
            state_of(other, host="csp-1"),
            state_of(unrelated, host="csp-1"),
        )
    )
    (delete,) = plan(desired=D, observed=obs).actions
    assert isinstance(delete, DeleteVm) and delete.reason is DeleteReason.ORPHAN
    assert delete.vm.name == orphan_name and delete.report is None
    shielded = replace(obs, foreign=frozenset({orphan_name}))
    assert plan(desired=D, observed=shielded).done


def test_scale_in_deletes_the_retired_vm() -> None:
    extra = VmIdentity(
        deployment="dep",
        group="Group1",
        index=1,
        uuid="00000000-0000-4000-8000-000000000077",
        vmid="v",
    )
    desired = replace(D, retired=(extra,))
    obs = observe(
        view(
            "CSP-1",
            state_of(SPEC, host="csp-1"),
            state_of(replace(SPEC, name=extra.name), host="csp-1"),
        )
    )
    (delete,) = plan(desired=desired, observed=obs).actions
    assert isinstance(delete, DeleteVm) and delete.vm == extra and delete.report is not None


def test_plans_are_deterministic() -> None:
    desired = again(with_locator(DEP, "CSP-2"))
    obs = observe(view("CSP-1", state_of(SPEC, host="csp-1")))
    assert plan(desired=desired, observed=obs) == plan(desired=desired, observed=obs)
