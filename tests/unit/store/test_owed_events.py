"""What a crash may leave owed is durable: the commit's service event, a cut step's VM event.

Issue 14 defect 6: a change no VM sees, committed and replied to, lost its SERVICE_UPDATED
when the daemon died before the run; an owed VM event lived only in memory, so a second
crash right after the restart lost it. Both debts are now rows written in the transaction
that creates them and removed in the one that pays them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from esc_orch.model.actions import DeleteReason, DeleteVm
from esc_orch.model.events import EscEvent, EventType
from esc_orch.model.lifecycle import LifecycleOperation, VmIdentity
from esc_orch.model.ports import Intent
from esc_orch.model.record import DeploymentRecord, Undeployed, VmRecord
from esc_orch.northbound.backend import Datastore
from esc_orch.reactor import Reactor
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from payloads import EXAMPLES, config_of

KEY = ("name1", "dep")


def _commit(store: SqlDatastore, name: str) -> int:
    diff = store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    assert diff is not None
    return diff.txid


def test_a_commit_owes_its_service_event_until_a_record_settles_it(store: SqlDatastore) -> None:
    lifecycle = LifecycleStore(engine=store.engine, events=store.events)
    _commit(store, "vim_connectors.xml")

    async def scenario() -> None:
        assert await lifecycle.owed_runs() == {}
        first = _commit(store, "deploy_csp_1.xml")
        # Written by the commit's own transaction, before any listener ran.
        assert await lifecycle.owed_runs() == {KEY: first}
        second = _commit(store, "deploy_csp_2.xml")
        assert await lifecycle.owed_runs() == {KEY: second}
        record = DeploymentRecord(tenant="name1", name="dep", depid="d1")
        await lifecycle.save(replace(record, settled_txid=first))  # an older run's event
        assert await lifecycle.owed_runs() == {KEY: second}
        await lifecycle.save(replace(record, settled_txid=second))
        assert await lifecycle.owed_runs() == {}
        third = _commit(store, "deploy_csp_1.xml")
        gone = Undeployed(tenant="name1", name="dep", settled_txid=third)
        await lifecycle.publish(_undeployed_event(), record=gone)
        assert await lifecycle.owed_runs() == {}

    asyncio.run(scenario())
    lifecycle.close()


def _undeployed_event() -> EscEvent:
    return EscEvent.success(EventType.SERVICE_UNDEPLOYED, "gone", depname="dep", tenant="name1")


class _NoConnectors:
    def __call__(self, connector_id: str) -> object:
        raise LookupError(connector_id)


def test_the_event_of_a_cut_step_is_owed_in_the_record_before_the_restart_goes_on(
    store: SqlDatastore,
) -> None:
    """resume() writes the debt with the abandoned outcome: a crash right after keeps it."""
    lifecycle = LifecycleStore(engine=store.engine, events=store.events)
    vm = VmIdentity(
        deployment="dep", group="g", index=0, uuid="00000000-0000-4000-8000-000000000001", vmid="v"
    )
    action = DeleteVm(vm=vm, connector_id="CSP-1", keep_disk=True, reason=DeleteReason.UNDEPLOY)
    record = DeploymentRecord(tenant="name1", name="dep", depid="d1", vms=(VmRecord(identity=vm),))
    intent = Intent(
        step_id="s1",
        tenant="name1",
        deployment="dep",
        depid="d1",
        operation=LifecycleOperation.UNDEPLOY,
        action=action,
    )

    async def scenario() -> None:
        await lifecycle.record_intent(intent, record=record)
        # The daemon died here. The restarted reactor closes the intent...
        reactor = Reactor(
            connectors=_NoConnectors(),  # type: ignore[arg-type]
            journal=lifecycle,
            events=lifecycle,
            sleep=asyncio.sleep,
            new_uuid=lambda: "u",
        )
        await reactor.resume([], records=await lifecycle.records())
        # ...and dies again before any run: the debt is in the durable record.
        (durable,) = await lifecycle.records()
        entry = durable.vm(vm.name)
        assert entry is not None and entry.owed == action.report
        assert await lifecycle.unfinished() == ()

    asyncio.run(scenario())
    lifecycle.close()
