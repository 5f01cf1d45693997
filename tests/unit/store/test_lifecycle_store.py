"""The reactor's durable journal, memory and event sink (store/journal.py, store/codec.py).

Driven by the real reactor on the fake cluster: every action it journals must read back
equal, the event log must hold its events in order, the memory must restore it after a
restart, and an outcome must never be durable without the event that reports it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from esc_orch.model.actions import CreateVm
from esc_orch.model.events import parse_esc_event
from esc_orch.model.failure import DiskHeld, HostUnreachable, RetriesExhausted, Waited
from esc_orch.model.lifecycle import AppliedVm, DeploymentState, VmIdentity
from esc_orch.model.record import DeploymentRecord, FailureNote, StepInFlight, VmRecord
from esc_orch.reactor import Intent, MemoryJournal, Outcome, StepStatus
from esc_orch.reconcile import LifecycleOperation
from esc_orch.store.codec import action_from_json, action_to_json, record_from_json, record_to_json
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
        (record,) = await store.records()
        # The store keeps exactly the record the reactor produced (nothing re-derived).
        assert record == reactor.status("name1", "dep")
        assert record.ever_active and record.run is None and record.step is None
        (vm,) = record.vms
        assert vm.applied is not None and vm.applied.connector_id == "CSP-1"
        assert vm.alive

        # A restarted reactor given the record moves the same VM (no second one).
        again = Lab(journal=store, events=store, hosts=lab.hosts, cluster=lab.cluster)  # type: ignore[arg-type]
        again.connectors = lab.connectors
        reactor2 = again.reactor(uuid_start=5000)
        await reactor2.resume([], records=await store.records())
        moved = target(with_locator(DEP, "CSP-2"), operation=LifecycleOperation.UPDATE)
        assert (await reactor2.run(moved)).ok
        assert [name for _, name in lab.running()] == [vm.name]
        await reactor2.run(target(None))
        assert await store.records() == ()

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

    before = DeploymentRecord(
        tenant="t",
        name="dep",
        depid="d1",
        run=LifecycleOperation.DEPLOY,
        vms=(VmRecord(identity=vm),),
    )
    after = before.with_vm(
        vm.name, applied=AppliedVm(connector_id="C", vim_project=None, spec=spec)
    )

    async def crash_before_event() -> None:
        store = LifecycleStore(engine=datastore.engine, events=datastore.events)
        await store.record_intent(intent, record=before)
        await store.record_outcome(Outcome(step_id="s1", status=StepStatus.DONE), record=after)
        store.close()  # the process dies here: the VM event was never logged

        restarted = LifecycleStore(engine=datastore.engine, events=datastore.events)
        assert [i.action for i in await restarted.unfinished()] == [intent.action]
        (record,) = await restarted.records()
        assert record == before  # known, not yet applied: the record of the intent
        assert record.vms[0].applied is None
        assert record.run is LifecycleOperation.DEPLOY
        restarted.close()

    asyncio.run(crash_before_event())
    assert datastore.events.read() == []


def test_a_record_with_every_field_round_trips() -> None:
    vm = VmIdentity(
        deployment="d", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
    )
    spec = VmSpec(name=vm.name, vcpus=1, memory_mb=512, disk_mb=1024, image="i")
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    failure = Waited(
        attempts=4, blocked=(HostUnreachable(connector_id="CSP-2", vm_name=vm.name, detail="x"),)
    )
    record = DeploymentRecord(
        tenant="t",
        name="d",
        depid="id",
        state=DeploymentState.ERROR,
        vms=(
            VmRecord(
                identity=vm,
                applied=AppliedVm(connector_id="CSP-1", vim_project="p", spec=spec),
                seen_on="CSP-1",
                alive=True,
                wanted_off=True,
                unmonitored=True,
                last_failure=FailureNote(
                    failure=DiskHeld(
                        vm_name=vm.name, connector_id="CSP-2", unreachable_source="CSP-1"
                    ),
                    at=at,
                ),
            ),
        ),
        ever_active=True,
        run=LifecycleOperation.UPDATE,
        step=StepInFlight(
            step_id="s", action="CreateVm", vm_name=vm.name, connector_id="C", started=at
        ),
        last_failure=FailureNote(failure=failure, at=at),
        owed_service_action="STOP",
    )
    assert record_from_json(record_to_json(record)) == record
    other = FailureNote(
        failure=RetriesExhausted(what="w", connector_id="C", attempts=3, detail="503"), at=at
    )
    assert (
        record_from_json(record_to_json(replace(record, last_failure=other))).last_failure == other
    )
