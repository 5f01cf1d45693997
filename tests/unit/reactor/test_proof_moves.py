"""Proof before a second copy, carried out by the reactor (reconcile.proof + the proof gate).

Each way a move away from a silent host is unblocked — the host dying (its disk lock freed),
an operator's confirmation, a fence agent, the host answering again — and what people see
while it waits. Fake cluster, fake clock: no real sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esc_orch.fence.fake import FakeFenceAgent, FakePowerBoard
from esc_orch.fence.protocol import FenceAgent
from esc_orch.fence.types import FenceAgentConfig
from esc_orch.model.actions import FenceHost
from esc_orch.model.config import Scaling, StaticIpAddressPool
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.failure import FailureCause, NotAliveAfterMove, cause_of
from esc_orch.model.ports import StepStatus
from esc_orch.model.record import StepInFlight
from esc_orch.model.vim import VmSpec, VmState
from esc_orch.vim.errors import VimDiskInUse
from esc_orch.vim.fake import FakeClock, FakeConnector
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_group, with_locator, with_storage

DEP = seed_deployment()
LOCAL = with_storage(DEP, "local")


@dataclass
class Sources:
    """ProofSources for tests: ``on_wait`` runs at each wait (the world changing meanwhile)."""

    clock: FakeClock
    confirmations: dict[str, HostDownConfirmation] = field(default_factory=dict)
    agents: dict[str, tuple[FenceAgent, str]] = field(default_factory=dict)
    on_wait: list[Callable[[], None]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def fence_agent(self, connector_id: str) -> tuple[FenceAgent, str] | None:
        return self.agents.get(connector_id)

    def confirmation(self, connector_id: str) -> HostDownConfirmation | None:
        return self.confirmations.get(connector_id)

    async def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.on_wait:
            self.on_wait.pop(0)()
        await self.clock.sleep(seconds)


async def test_a_partitioned_source_dying_frees_the_lock_and_the_move_goes_on() -> None:
    lab = Lab()
    sources = Sources(lab.clock)
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True  # partitioned: still runs the VM, holds its disk
    seen: list[StepInFlight | None] = []

    def die() -> None:
        record = reactor.status("name1", "dep")
        seen.append(record.step if record else None)
        lab.connectors["CSP-1"].crash_host()  # then it loses power: lock released

    sources.on_wait.append(lambda: None)  # the first wait: still partitioned
    sources.on_wait.append(die)
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert lab.running() == [("csp-2", name)]
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    step = seen[0]
    assert step is not None and step.action == "WaitForProof" and step.connector_id == "CSP-1"
    assert step.detail is not None and "disk is still locked" in step.detail
    assert "confirm that CSP-1 is down" in step.detail


async def test_operator_confirmation_lets_a_local_disk_vm_be_redeployed() -> None:
    lab = Lab()
    sources = Sources(lab.clock)
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(LOCAL))).ok
    (name,) = lab.vms("csp-1")
    lab.connectors["CSP-1"].crash_host()

    def confirm() -> None:
        sources.confirmations["CSP-1"] = HostDownConfirmation(
            host="CSP-1", by="admin", at=lab.clock.utc()
        )

    sources.on_wait.append(confirm)
    outcome = await reactor.run(target(with_locator(LOCAL, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert lab.running() == [("csp-2", name)]
    assert lab.events.types()[3:] == ["VM_UPDATED", "SERVICE_UPDATED"]
    assert len(sources.waits) == 1  # the confirmation ended the wait


async def test_a_confirmation_older_than_the_hosts_last_answer_proves_nothing() -> None:
    lab = Lab()
    sources = Sources(lab.clock)
    early = HostDownConfirmation(host="CSP-1", by="admin", at=lab.clock.utc())
    sources.confirmations["CSP-1"] = early
    reactor = lab.reactor(proof_sources=sources)
    lab.clock.now += 5
    assert (await reactor.run(target(LOCAL))).ok  # CSP-1 answers after the confirmation
    lab.connectors["CSP-1"].crash_host()
    outcome = await reactor.run(target(with_locator(LOCAL, "CSP-2")))
    assert not outcome.ok and "was not started elsewhere" in (outcome.reason or "")
    assert lab.vms("csp-2") == {}


async def test_a_configured_fence_agent_fences_first_as_a_journaled_step() -> None:
    lab = Lab()
    board = FakePowerBoard()
    agent = FakeFenceAgent(
        config=FenceAgentConfig(id="bmc-1", type="FAKE", properties={"host_name": "csp-1"}),
        board=board,
        now=lab.clock.utc,
    )
    board.on_power_off["csp-1"] = lab.connectors["CSP-1"].crash_host
    sources = Sources(lab.clock, agents={"CSP-1": (agent, "csp-1")})
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(LOCAL))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True  # partitioned, VM running there
    lab.clock.now += 1
    outcome = await reactor.run(target(with_locator(LOCAL, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert ("fence", "csp-1") in board.calls
    assert lab.running() == [("csp-2", name)]
    assert sources.waits == []  # fenced at once, no wait
    fences = [(i, o) for i, o in lab.journal.entries if isinstance(i.action, FenceHost)]
    assert len(fences) == 1
    outcome_of_fence = fences[0][1]
    assert outcome_of_fence is not None and outcome_of_fence.status is StepStatus.DONE
    assert fences[0][0].action.agent_id == "bmc-1"


async def test_a_fence_agent_that_fails_for_good_is_named_in_the_failure() -> None:
    lab = Lab()
    board = FakePowerBoard()
    agent = FakeFenceAgent(
        config=FenceAgentConfig(id="bmc-1", type="FAKE", properties={"host_name": "csp-9"}),
        board=board,
        now=lab.clock.utc,
    )
    sources = Sources(lab.clock, agents={"CSP-1": (agent, "csp-1")})
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(LOCAL))).ok
    lab.hosts["csp-1"].down = True
    outcome = await reactor.run(target(with_locator(LOCAL, "CSP-2")))
    reason = outcome.reason or ""
    assert not outcome.ok and "wrong-host" in reason and "fix the fence agent of CSP-1" in reason
    assert lab.vms("csp-2") == {}


async def test_the_source_answering_again_moves_the_vm_the_ordinary_way() -> None:
    lab = Lab()
    sources = Sources(lab.clock)
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True

    def back() -> None:
        lab.hosts["csp-1"].down = False

    sources.on_wait.append(back)
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert lab.running() == [("csp-2", name)]
    assert lab.vms("csp-1") == {}  # stopped and removed there first, disk kept


async def test_a_confirmation_does_not_beat_the_disk_lock_of_a_partitioned_host() -> None:
    lab = Lab()
    sources = Sources(lab.clock)
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True  # partitioned, still holding the shared disk
    lab.clock.now += 1
    sources.confirmations["CSP-1"] = HostDownConfirmation(
        host="CSP-1", by="admin", at=lab.clock.utc()
    )
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    assert not outcome.ok  # the operator was wrong: the lock kept the second copy off
    assert lab.running() == [("csp-1", name)] and lab.vms("csp-2") == {}
    assert len(sources.waits) >= 5  # waited between tries, no busy loop


class LeftoverConnector(FakeConnector):
    """A target whose clean-up after a start refused by the disk lock is lost (the CSP
    connector's DELETE after the 409 can fail under load): the refused copy stays defined,
    stopped, as the CSP leaves it."""

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        holders = self.host.cluster.gluster_holder
        holder = holders.get(spec.name)
        if holder in (None, self.host.name) or spec.name in self.host.vms:
            return await super().ensure_vm(spec=spec)
        del holders[spec.name]
        try:
            await super().ensure_vm(spec=spec)
            await super().power_off(name=spec.name)
        finally:
            holders[spec.name] = holder
        raise VimDiskInUse(f"disk of {spec.name!r} is in use on host {holder}")


async def test_a_copy_left_defined_by_a_refused_start_is_no_proof_and_is_removed() -> None:
    lab = Lab()
    lab.connectors["CSP-2"] = LeftoverConnector(
        config=lab.connectors["CSP-2"].config, host=lab.hosts["csp-2"], clock=lab.clock
    )
    sources = Sources(lab.clock)
    reactor = lab.reactor(proof_sources=sources)
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.hosts["csp-1"].down = True  # partitioned, still holding the shared disk
    on_target: list[dict[str, Any]] = []
    sources.on_wait.extend([lambda: on_target.append(dict(lab.vms("csp-2")))] * 3)
    outcome = await reactor.run(target(with_locator(DEP, "CSP-2")))
    # The leftover was found at the next try: not taken for the moved VM (its start did not
    # take the lock, so nothing was proven), and removed each time the lock refused it.
    assert not outcome.ok
    assert lab.running() == [("csp-1", name)] and lab.vms("csp-2") == {}
    assert on_target == [{}, {}, {}]
    record = reactor.status("name1", "dep")
    assert record is not None
    entry = record.vm(name)
    assert entry is not None and entry.connector_id == "CSP-1"


async def test_a_move_keeps_the_port_ids_where_the_target_lets_it_choose_them() -> None:
    lab = Lab()
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    before = {
        n.nicid: n.port_id for n in (await lab.connectors["CSP-1"].get_vm(name=name)).interfaces
    }
    assert (await reactor.run(target(with_locator(DEP, "CSP-2")))).ok
    after = {
        n.nicid: n.port_id for n in (await lab.connectors["CSP-2"].get_vm(name=name)).interfaces
    }
    assert after == before and all(after.values())
    moved = lab.events.events[-2]
    assert moved.vm_source is not None and moved.vm_source.interfaces is not None
    reported = {i.nicid: i.port_id for i in moved.vm_source.interfaces.interface}
    assert reported == before  # the event says what the VIM really has


async def test_a_group_moves_one_vm_at_a_time_with_n_minus_1_running_throughout() -> None:
    lab = Lab()
    pool = StaticIpAddressPool(
        network="Eth0-2",
        netmask="255.255.255.0",
        ip_address=("192.168.23.61", "192.168.23.62", "192.168.23.63", "192.168.23.64"),
    )
    four = with_group(
        DEP, scaling=Scaling(min_active=4, max_active=4, static_ip_address_pool=(pool,))
    )
    reactor = lab.reactor()
    assert (await reactor.run(target(four))).ok
    assert len(lab.vms("csp-1")) == 4
    seen: list[int] = []
    for cid, connector in list(lab.connectors.items()):

        def watch(name: str, call: Any) -> Any:
            async def wrapped(*args: Any, **kw: Any) -> Any:
                seen.append(len(lab.running()))
                try:
                    return await call(*args, **kw)
                finally:
                    seen.append(len(lab.running()))

            return wrapped

        for op in ("power_off", "delete_vm", "ensure_vm", "power_on"):
            setattr(connector, op, watch(op, getattr(connector, op)))
        lab.connectors[cid] = connector
    assert (await reactor.run(target(with_locator(four, "CSP-2")))).ok
    assert len(lab.vms("csp-2")) == 4 and lab.vms("csp-1") == {}
    assert min(seen) >= 3 and len(seen) > 8
    assert lab.events.types()[-5:] == ["VM_UPDATED"] * 4 + ["SERVICE_UPDATED"]


async def test_a_disk_copy_shows_its_progress_in_the_step() -> None:
    lab = Lab()
    local = with_locator(seed_deployment("deploy_csp_1_local.xml"), "CSP-1-local")
    reactor = lab.reactor()
    assert (await reactor.run(target(local))).ok
    seen: list[StepInFlight] = []
    connector = lab.connectors["CSP-1-cluster"]
    copy = connector.copy_disk

    async def watched(**kw: Any) -> Any:
        given = kw.pop("progress")

        def spy(done: Any) -> None:
            given(done)
            record = reactor.status("name1", "dep")
            if record is not None and record.step is not None:
                seen.append(record.step)

        return await copy(progress=spy, **kw)

    connector.copy_disk = watched  # type: ignore[method-assign]
    gluster = with_locator(seed_deployment("deploy_gluster.xml"), "CSP-1-cluster")
    assert (await reactor.run(target(gluster))).ok
    assert seen and seen[-1].bytes_done == seen[-1].bytes_total
    assert all(s.action == "MigrateVm" and s.bytes_total for s in seen)
    assert "copying the disk of" in (seen[0].detail or "") and "%" in (seen[0].detail or "")


async def test_a_silent_host_with_none_of_its_vms_slows_no_deployment() -> None:
    """Issue 14, defect 7: a run asks only the connectors it needs."""
    lab = Lab()
    lab.hosts["csp-3"].latency = 120.0  # partitioned: every call hangs for two minutes
    reactor = lab.reactor()
    assert (await reactor.run(target(DEP))).ok
    assert lab.clock.now < 1.0  # CSP-3 never asked
    assert lab.hosts["csp-3"].calls == []


async def test_an_observation_is_bounded_by_the_observe_timeout() -> None:
    lab = Lab()
    reactor = lab.reactor(observe_timeout=0.05)
    assert (await reactor.run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    lab.connectors["CSP-1"].crash_host()  # dead (its lock released)...

    async def hang() -> None:
        await asyncio.Event().wait()  # ...and its API never answers

    lab.connectors["CSP-1"].describe = hang  # type: ignore[method-assign,assignment]
    outcome = await asyncio.wait_for(reactor.run(target(with_locator(DEP, "CSP-2"))), 10)
    assert outcome.ok, outcome.reason
    assert lab.running() == [("csp-2", name)]


def _group(n: int) -> Any:
    pool = StaticIpAddressPool(
        network="Eth0-2",
        netmask="255.255.255.0",
        ip_address=tuple(f"192.168.23.{61 + i}" for i in range(n)),
    )
    return with_group(
        DEP, scaling=Scaling(min_active=n, max_active=n, static_ip_address_pool=(pool,))
    )


async def test_a_monitored_group_moves_the_next_vm_only_once_the_last_is_alive_by_its_kpi() -> None:
    """Where the monitoring decides (a KPI, wired), running on the target is not enough: the
    next VM stops only after the monitoring's verdict for the VM moved before. The wait shows
    in the record's step (opdata eo:current_step)."""
    lab = Lab()
    two = _group(2)
    reactor = lab.reactor(alive_timeout=60)
    group = two.vm_group[0].name
    monitored = {"alive_by_monitor": frozenset({group})}
    assert (await reactor.run(target(two))).ok
    alive = reactor.alive
    alive.enabled = True
    steps: list[StepInFlight] = []
    sleep = lab.clock.sleep
    order: list[str] = []

    async def verdict_after_a_while(seconds: float) -> None:
        record = reactor.status("name1", "dep")
        assert record is not None
        if record.step is not None and record.step.action == "WaitForAlive":
            steps.append(record.step)
            if len(steps) == 3:  # the KPI turns TRUE after three looks
                alive.note(record.step.vm_name, at=lab.clock.utc())
                order.append(f"alive {record.step.vm_name}")
        await sleep(seconds)

    alive._sleep = verdict_after_a_while  # the wait's sleep, under the fake clock
    off = lab.connectors["CSP-1"].power_off

    async def power_off(*, name: str) -> Any:
        order.append(f"stop {name}")
        return await off(name=name)

    lab.connectors["CSP-1"].power_off = power_off  # type: ignore[method-assign]
    outcome = await reactor.run(target(with_locator(two, "CSP-2"), **monitored))
    assert outcome.ok, outcome.reason
    assert len(steps) == 3 and steps[0].detail is not None
    first = steps[0].vm_name
    assert f"once {first} is alive (its KPI) on CSP-2" in steps[0].detail
    assert "of at most 60 s" in steps[0].detail
    assert order[0] == f"stop {first}" and order[1] == f"alive {first}"  # then the second
    assert order[2].startswith("stop ") and order[2] != f"stop {first}"
    assert lab.events.types()[-3:] == ["VM_UPDATED", "VM_UPDATED", "SERVICE_UPDATED"]
    assert alive.awaited == {}


async def test_a_moved_vm_never_alive_is_a_typed_failure_and_the_next_vm_keeps_running() -> None:
    lab = Lab()
    two = _group(2)
    reactor = lab.reactor(alive_timeout=30)
    group = two.vm_group[0].name
    assert (await reactor.run(target(two))).ok
    reactor.alive.enabled = True
    outcome = await reactor.run(
        target(with_locator(two, "CSP-2"), alive_by_monitor=frozenset({group}))
    )
    assert not outcome.ok and outcome.failure is not None
    assert cause_of(outcome.failure) is FailureCause.NOT_ALIVE_AFTER_MOVE
    assert isinstance(outcome.failure, NotAliveAfterMove) and outcome.failure.by_kpi
    reason = outcome.reason or ""
    assert "its KPI did not report it alive within 30 s" in reason
    assert "was not moved (it keeps running where it is)" in reason
    assert len(lab.vms("csp-2")) == 1 and len(lab.vms("csp-1")) == 1  # one moved, one kept
    assert len(lab.running()) == 2
    assert lab.events.types()[-2:] == ["VM_UPDATED/FAILURE", "SERVICE_UPDATED/FAILURE"]
    assert 30 <= lab.clock.now < 40


async def test_an_unmonitored_group_falls_back_to_the_vims_running_state() -> None:
    lab = Lab()
    two = _group(2)
    reactor = lab.reactor(alive_timeout=30)
    assert (await reactor.run(target(two))).ok
    reactor.alive.enabled = True  # wired, but this group has no KPI: the VIM's view decides
    outcome = await reactor.run(target(with_locator(two, "CSP-2")))
    assert outcome.ok, outcome.reason
    assert len(lab.vms("csp-2")) == 2


async def test_a_group_of_vms_the_operator_stopped_moves_without_waiting_for_them_to_run() -> None:
    lab = Lab()
    two = _group(2)
    reactor = lab.reactor(alive_timeout=30)
    group = two.vm_group[0].name
    assert (await reactor.run(target(two))).ok
    names = frozenset(lab.vms("csp-1"))
    reactor.alive.enabled = True
    assert (await reactor.run(target(two, stopped=names))).ok  # both stopped (vmAction STOP)
    record = reactor.status("name1", "dep")
    assert record is not None
    await reactor.set_flags("name1", "dep", stopped=names)
    outcome = await reactor.run(
        target(with_locator(two, "CSP-2"), stopped=names, alive_by_monitor=frozenset({group}))
    )
    assert outcome.ok, outcome.reason
    assert len(lab.vms("csp-2")) == 2 and lab.running() == []
    assert lab.clock.now < 30  # no wait for a VM that is meant to be off
