"""Crash and resume without a second VM; one deployment serialised, latest desired wins."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from esc_orch.model.record import DeploymentRecord
from esc_orch.reactor import Intent, MemoryJournal, Outcome, StepStatus
from esc_orch.reconcile import CreateVm, LifecycleOperation
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_locator

DEP = seed_deployment()


class Crash(BaseException):
    """The process dies (not an Exception: nothing may catch it)."""


@dataclass
class CrashingJournal(MemoryJournal):
    """Dies right after writing the first intent, or right before the first outcome."""

    after_intent: bool = True
    armed: bool = True

    async def record_intent(self, intent: Intent, *, record: DeploymentRecord) -> None:
        await super().record_intent(intent, record=record)
        if self.armed and self.after_intent:
            self.armed = False
            raise Crash

    async def record_outcome(self, outcome: Outcome, *, record: DeploymentRecord | None) -> None:
        if self.armed and not self.after_intent:
            self.armed = False
            raise Crash
        await super().record_outcome(outcome, record=record)


@pytest.mark.parametrize("after_intent", [True, False], ids=["before-action", "after-action"])
async def test_resume_after_a_crash_creates_no_second_vm(after_intent: bool) -> None:
    lab = Lab(journal=CrashingJournal(after_intent=after_intent))
    with pytest.raises(Crash):
        await lab.reactor().run(target(DEP))
    (intent,) = await lab.journal.unfinished()
    assert isinstance(intent.action, CreateVm)
    assert len(lab.vms("csp-1")) == (0 if after_intent else 1)
    # A new process: empty memory, other uuids; only the journal and the VIMs survived.
    restarted = lab.reactor(uuid_start=5000)
    closed = await restarted.resume([target(DEP)])
    await restarted.drain()
    assert closed == (intent,)
    assert list(lab.vms("csp-1")) == [intent.action.vm.name]  # same name, one VM
    assert lab.events.types() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
    deployed = lab.events.events[0]
    assert deployed.depid == intent.depid
    assert deployed.vm_source is not None and deployed.vm_source.vmid == intent.action.vm.vmid
    assert restarted.last_outcome("name1", "dep").operation is LifecycleOperation.DEPLOY  # type: ignore[union-attr]
    statuses = [o.status if o else None for _, o in lab.journal.entries]
    assert statuses[0] is StepStatus.ABANDONED and None not in statuses


async def test_vms_found_without_any_memory_are_adopted_not_doubled() -> None:
    lab = Lab()
    assert (await lab.reactor().run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    amnesiac = lab.reactor(uuid_start=7000)  # no journal entries, no opdata
    assert (await amnesiac.run(target(DEP))).ok
    assert list(lab.vms("csp-1")) == [name]


async def test_latest_desired_state_wins_and_is_never_interleaved() -> None:
    gate = asyncio.Event()
    lab = Lab(gate=gate)
    reactor = lab.reactor()
    reactor.submit(target(DEP))
    await asyncio.wait_for(lab.entered.wait(), 5)  # the deploy is mid-step on CSP-1
    reactor.submit(target(with_locator(DEP, "CSP-2")))
    reactor.submit(target(with_locator(DEP, "CSP-3")))
    gate.set()
    await reactor.drain()
    (name,) = lab.vms("csp-3")
    assert lab.running() == [("csp-3", name)]
    assert "ensure_vm" not in lab.hosts["csp-2"].calls  # the superseded state was skipped
    assert lab.events.types() == [
        "VM_DEPLOYED",
        "VM_ALIVE",
        "SERVICE_ALIVE",
        "VM_UPDATED",
        "SERVICE_UPDATED",
    ]
    assert lab.events.events[3].vm_source.vim_id == "CSP-3"  # type: ignore[union-attr]


class Recorder(asyncio.Event):
    """Stands in for GatedConnector.entered: counts the runs that reached ensure_vm."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.seen = seen

    def set(self) -> None:
        self.seen.append("entered")
        super().set()


@pytest.mark.parametrize(("limit", "together"), [(1, 1), (2, 2)])
async def test_deployments_run_in_parallel_up_to_the_limit(limit: int, together: int) -> None:
    gate = asyncio.Event()
    lab = Lab(gate=gate)
    inside: list[str] = []

    for conn in lab.connectors.values():
        conn.entered = Recorder(inside)  # type: ignore[attr-defined]
    reactor = lab.reactor(max_parallel=limit)
    reactor.submit(target(DEP, name="dep"))
    reactor.submit(target(DEP.model_copy(update={"name": "dep2"}), name="dep2"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(inside) == together
    gate.set()
    await reactor.drain()
    assert len(inside) == 2
    assert reactor.status("name1", "dep") is not None
    assert reactor.status("name1", "dep2") is not None
    assert len(lab.vms("csp-1")) == 2


async def test_same_deployment_name_in_two_tenants_never_touch_each_other() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP, tenant="a"))).ok
    assert (await reactor.run(target(DEP, tenant="b"))).ok
    assert len(lab.vms("csp-1")) == 2  # b neither adopted nor deleted a's VM
    assert (await reactor.run(target(None, tenant="b"))).ok
    (left,) = lab.vms("csp-1")
    status = reactor.status("a", "dep")
    assert status is not None and status.vms[0].identity.name == left


def test_target_name_must_match_the_deployment() -> None:
    with pytest.raises(ValueError, match="carries deployment"):
        target(DEP, name="other")


async def test_a_delete_cut_before_its_vim_call_is_reported_once() -> None:
    """Issue 14 #6: the restart's delete step pays the owed VM_UNDEPLOYED (not sent twice)."""
    journal = CrashingJournal(after_intent=True, armed=False)
    lab = Lab(journal=journal)
    first = lab.reactor()
    assert (await first.run(target(DEP))).ok
    journal.armed = True
    with pytest.raises(Crash):
        await first.run(target(None))
    assert len(lab.vms("csp-1")) == 1  # the delete was journaled, not made
    restarted = lab.reactor(uuid_start=5000)
    record = first.status("name1", "dep")
    assert record is not None
    await restarted.resume([target(None)], records=(record,))
    await restarted.drain()
    assert lab.vms("csp-1") == {}
    assert lab.events.types()[3:] == ["VM_UNDEPLOYED", "SERVICE_UNDEPLOYED"]


@pytest.mark.parametrize("first", ["dep", "dep_a"])
async def test_a_deployment_whose_vm_names_look_like_another_s_never_takes_them(
    first: str,
) -> None:
    """``dep`` with group ``a_Group1`` and ``dep_a`` with group ``Group1`` both name their VM
    ``dep_a_Group1_0_<uuid>``-like: each run must leave the other's VM alone (the reactor only
    looks at the records whose names can collide with the deployment's, not at all of them)."""
    group = DEP.vm_group[0]
    deployments = {
        "dep": DEP.model_copy(
            update={"vm_group": [group.model_copy(update={"name": "a_" + group.name})]}
        ),
        "dep_a": DEP.model_copy(update={"name": "dep_a"}),
    }
    lab = Lab()
    reactor = lab.reactor()
    second = "dep_a" if first == "dep" else "dep"
    for name in (first, second):
        assert (await reactor.run(target(deployments[name], name=name))).ok
    assert len(lab.vms("csp-1")) == 2
    names = set()
    for name in ("dep", "dep_a"):
        status = reactor.status("name1", name)
        assert status is not None and len(status.vms) == 1
        names.add(status.vms[0].identity.name)
    assert names == set(lab.vms("csp-1"))
    # and a resync of each changes nothing
    for name in ("dep", "dep_a"):
        assert (await reactor.run(target(deployments[name], name=name, resync=True))).ok
    assert set(lab.vms("csp-1")) == names


async def test_a_held_deployment_is_restored_but_not_converged_at_start_up() -> None:
    """Found by the crash matrix's recovery rows: a VM left off by a crash during its
    recovery was started by the start-up resync (VM_STARTED, SERVICE_UPDATED) while the
    resumed recovery ran its cut step again. A deployment the resuming recovery holds is
    restored, its intents closed, and left to the recovery."""
    journal = CrashingJournal(after_intent=True, armed=False)
    lab = Lab(journal=journal)
    first = lab.reactor()
    assert (await first.run(target(DEP))).ok
    record = first.status("name1", "dep")
    assert record is not None
    (name,) = lab.vms("csp-1")
    await lab.connectors["CSP-1"].power_off(name=name)  # behind the daemon's back
    before = lab.events.types()
    restarted = lab.reactor(uuid_start=5000)
    await restarted.resume(
        [target(DEP, resync=True, operation=LifecycleOperation.UPDATE)],
        records=(record,), hold={record.key},
    )  # fmt: skip
    await restarted.drain()
    assert restarted.status("name1", "dep") == record
    assert lab.running() == [] and lab.events.types() == before  # left to the recovery
    resync = lab.reactor(uuid_start=6000)  # without the hold, the resync starts it
    await resync.resume(
        [target(DEP, resync=True, operation=LifecycleOperation.UPDATE)], records=(record,)
    )
    await resync.drain()
    assert lab.running() == [("csp-1", name)] and "VM_STARTED" in lab.events.types()[len(before) :]
