"""The reactor's durable journal, memory and event sink (store/journal.py, store/codec.py).

Driven by the real reactor on the fake cluster: every action it journals must read back
equal, the event log must hold its events in order, the memory must restore it after a
restart, and an outcome must never be durable without the event that reports it.
"""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from esc_orch.model.actions import CreateVm
from esc_orch.model.events import parse_esc_event
from esc_orch.model.lifecycle import VmIdentity
from esc_orch.reactor import Intent, MemoryJournal, Outcome, StepStatus
from esc_orch.reconcile import LifecycleOperation
from esc_orch.store.codec import action_from_json, action_to_json
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from esc_orch.vim.types import Day0File, NicSpec, SerialPortSpec, Storage, VmSpec
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_locator

DEP = seed_deployment()


@pytest.fixture
def datastore(store: SqlDatastore) -> SqlDatastore:
    """The store fixture of conftest.py: SQLite, and PostgreSQL when one is available."""
    return store


def _logged_types(ds: SqlDatastore) -> list[str]:
    out = []
    for logged in ds.events.read(limit=1000):
        event = parse_esc_event(etree.fromstring(logged.payload))
        out.append(str(event.event.type) + ("" if str(event.status) == "SUCCESS" else "/FAILURE"))
    return out


def test_every_action_the_reactor_journals_round_trips() -> None:
    lab = Lab()

    async def scenario() -> None:
        reactor = lab.reactor()
        await reactor.run(target(DEP))
        await reactor.run(target(with_locator(DEP, "CSP-2")))
        vm = next(iter(lab.hosts["csp-2"].vms))
        await reactor.run(target(with_locator(DEP, "CSP-2"), reboot=frozenset({vm})))
        await reactor.run(target(with_locator(DEP, "CSP-2"), stopped=frozenset({vm})))
        await reactor.run(target(None))

    asyncio.run(scenario())
    journal = lab.journal
    assert isinstance(journal, MemoryJournal)
    kinds = set()
    for intent, _ in journal.entries:
        assert action_from_json(action_to_json(intent.action)) == intent.action
        kinds.add(type(intent.action).__name__)
    assert {"CreateVm", "MigrateVm", "Reboot", "PowerOff", "DeleteVm"} <= kinds


def test_a_spec_with_every_field_round_trips() -> None:
    vm = VmIdentity(
        deployment="d", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
    )
    spec = VmSpec(
        name=vm.name,
        vcpus=2,
        memory_mb=2048,
        disk_mb=1024,
        image="img.qcow2",
        interfaces=(NicSpec(nicid=0, network="n", vlan=3, tagged=True, ip_address="10.0.0.1"),),
        serial_ports=(SerialPortSpec(index=0),),
        storage=Storage.GLUSTER,
        day0=(Day0File(dst="a.txt", content=b"\x00day0"), Day0File(dst="b", url="file:///x")),
    )
    action = CreateVm(vm=vm, connector_id="CSP-1", vim_project=None, spec=spec)
    assert action_from_json(action_to_json(action)) == action


def test_reactor_on_the_store_logs_events_and_remembers(datastore: SqlDatastore) -> None:
    store = LifecycleStore(engine=datastore.engine, events=datastore.events)
    lab = Lab(journal=store, events=store)  # type: ignore[arg-type]

    async def deploy() -> None:
        reactor = lab.reactor()
        await reactor.run(target(DEP))
        assert await store.unfinished() == ()
        (memory,) = await store.memories()
        assert memory.active and memory.unfinished is None
        assert [k.name for k in memory.known] == list(memory.applied)
        assert memory.applied[memory.known[0].name].connector_id == "CSP-1"
        assert memory.alive == {memory.known[0].name}

        # A restarted reactor given the memory moves the same VM (no second one).
        again = Lab(journal=store, events=store, hosts=lab.hosts, cluster=lab.cluster)  # type: ignore[arg-type]
        again.connectors = lab.connectors
        reactor2 = again.reactor(uuid_start=5000)
        moved = target(
            with_locator(DEP, "CSP-2"),
            known=memory.known,
            applied=memory.applied,
            depid=memory.depid,
            alive=memory.alive,
            operation=LifecycleOperation.UPDATE,
        )
        assert (await reactor2.run(moved)).ok
        assert [name for _, name in lab.running()] == [memory.known[0].name]
        await reactor2.run(target(None, known=memory.known, depid=memory.depid))
        assert await store.memories() == ()

    asyncio.run(deploy())
    store.close()
    assert _logged_types(datastore) == [
        "VM_DEPLOYED",
        "VM_ALIVE",
        "SERVICE_ALIVE",
        "VM_UPDATED",
        "SERVICE_UPDATED",
        "VM_UNDEPLOYED",
        "SERVICE_UNDEPLOYED",
    ]


def test_an_outcome_is_durable_only_with_its_event(datastore: SqlDatastore) -> None:
    vm = VmIdentity(
        deployment="dep", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
    )
    spec = VmSpec(name=vm.name, vcpus=1, memory_mb=512, disk_mb=1024, image="i")
    intent = Intent(
        step_id="s1",
        tenant="t",
        deployment="dep",
        depid="d1",
        operation=LifecycleOperation.DEPLOY,
        action=CreateVm(vm=vm, connector_id="C", vim_project=None, spec=spec),
    )

    async def crash_before_event() -> None:
        store = LifecycleStore(engine=datastore.engine, events=datastore.events)
        await store.record_intent(intent)
        await store.record_outcome(Outcome(step_id="s1", status=StepStatus.DONE))
        store.close()  # the process dies here: the VM event was never logged

        restarted = LifecycleStore(engine=datastore.engine, events=datastore.events)
        assert [i.action for i in await restarted.unfinished()] == [intent.action]
        (memory,) = await restarted.memories()
        assert memory.known == (vm,) and memory.applied == {}  # known, not yet applied
        assert memory.unfinished is LifecycleOperation.DEPLOY
        restarted.close()

    asyncio.run(crash_before_event())
    assert datastore.events.read() == []
