"""Write tests/fixtures/lifecycle_0_1_0.json: the rows esc-orch 0.1.0's LifecycleStore wrote.

Runs the 0.1.0 code itself (not this tree's), so the migration test upgrades exactly what an
0.1.0 daemon left behind. Not part of the package or of the lint (it imports 0.1.0 modules):

    rm -rf /tmp/eo-0.1.0 && mkdir /tmp/eo-0.1.0 && git archive 06fcd7842e85 src yang | tar -x -C /tmp/eo-0.1.0
    PYTHONPATH=/tmp/eo-0.1.0/src .venv/bin/python scripts/make_lifecycle_0_1_0.py \
        > tests/fixtures/lifecycle_0_1_0.json

(06fcd7842e85 is main at 0.1.0, before the lifecycle-core refactor; once tagged, use the tag.)
The scenario: deployment t1/dep-a deployed with two VMs (SERVICE_ALIVE, VM_ALIVE of the first), the second stopped,
the first's monitoring disabled, a serviceAction owed, a re-planned step, then an update cut
by a crash (an open intent); deployment t1/dep-b's first deploy cut after its intent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from esc_orch.model.events import EscEvent, EventType, VmDetails
from esc_orch.reactor.journal import Intent, Outcome, StepStatus
from esc_orch.reconcile.actions import CreateVm, PowerOff
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.vocab import Operation
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from esc_orch.store.tables import Base
from esc_orch.vim.types import Day0File, NicSpec, Storage, VmSpec

# esc_orch.reconcile.vocab and DeploymentMemory exist only in 0.1.0: the imports above fail on
# a later tree, so what runs here is 0.1.0's code.


def _vm(dep: str, index: int, uuid: str, vmid: str) -> VmIdentity:
    return VmIdentity(deployment=dep, group="g1", index=index, uuid=uuid, vmid=vmid)


def _spec(vm: VmIdentity) -> VmSpec:
    return VmSpec(
        name=vm.name,
        vcpus=2,
        memory_mb=2048,
        disk_mb=4096,
        image="csr.qcow2",
        interfaces=(NicSpec(nicid=0, network="mgmt", ip_address="10.0.0.5"),),
        storage=Storage.GLUSTER,
        day0=(Day0File(dst="iosxe_config.txt", content=b"hostname r1\n"),),
    )


def _create(vm: VmIdentity, connector: str) -> CreateVm:
    return CreateVm(vm=vm, connector_id=connector, vim_project="admin", spec=_spec(vm))


async def scenario(store: LifecycleStore) -> None:
    a0 = _vm("dep-a", 0, "00000000-0000-4000-8000-00000000000a", "vmid-a0")
    a1 = _vm("dep-a", 1, "00000000-0000-4000-8000-00000000000b", "vmid-a1")
    b0 = _vm("dep-b", 0, "00000000-0000-4000-8000-00000000000c", "vmid-b0")

    def intent(step: str, dep: str, op: Operation, action: Any) -> Intent:
        return Intent(
            step_id=step, tenant="t1", deployment=dep, depid=f"depid-{dep}", operation=op,
            action=action,
        )

    for step, vm, connector in (("s1", a0, "csp-1"), ("s2", a1, "csp-2")):
        await store.record_intent(intent(step, "dep-a", Operation.DEPLOY, _create(vm, connector)))
        await store.record_outcome(Outcome(step_id=step, status=StepStatus.DONE))
        await store.publish(
            EscEvent.success(
                EventType.VM_DEPLOYED, "VM deployed", tenant="t1", depname="dep-a",
                vm_source=VmDetails(vmname=vm.name),
            )
        )
    await store.publish(
        EscEvent.success(
            EventType.VM_ALIVE, "VM alive", tenant="t1", depname="dep-a",
            vm_source=VmDetails(vmname=a0.name),
        )
    )
    await store.publish(
        EscEvent.success(EventType.SERVICE_ALIVE, "Service alive", tenant="t1", depname="dep-a")
    )
    await store.set_flags(
        tenant="t1", deployment="dep-a", stopped=[a1.name], unmonitored=[a0.name],
        owed_service_action="STOP",
    )
    off = PowerOff(vm=a1, connector_id="csp-2")
    await store.record_intent(intent("s3", "dep-a", Operation.UPDATE, off))
    await store.record_outcome(
        Outcome(step_id="s3", status=StepStatus.DONE, detail="replan: VM not on csp-2")
    )
    await store.record_intent(intent("s4", "dep-a", Operation.UPDATE, _create(a1, "csp-1")))
    await store.flush()
    await store.record_intent(intent("s5", "dep-b", Operation.DEPLOY, _create(b0, "csp-1")))
    await store.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ds = SqlDatastore.open(data_dir=Path(tmp))
        store = LifecycleStore(engine=ds.engine, events=ds.events)
        asyncio.run(scenario(store))
        store.close()
        rows: dict[str, list[dict[str, Any]]] = {}
        with Session(ds.engine) as session:
            for name in ("lifecycle_state", "lifecycle_journal", "event_log", "meta"):
                table = Base.metadata.tables[name]
                order = [c for c in table.primary_key.columns]
                rows[name] = [
                    {k: _jsonable(v) for k, v in row._mapping.items()}
                    for row in session.execute(select(table).order_by(*order))
                ]
        assert set(inspect(ds.engine).get_table_names()) >= set(rows)
        ds.close()
    json.dump(rows, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
