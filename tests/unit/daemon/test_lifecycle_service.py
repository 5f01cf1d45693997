"""LifecycleService, LifecycleActions and ConnectorPool on a real SQLite store and fake VIMs.

The daemon's lifecycle wiring without any process or network: commits drive the reactor,
actions set the record's flags durably, a restarted service resumes from the records alone,
and a failed deployment shows its typed cause in opdata.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.daemon.actions import LifecycleActions
from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.connectors import ConnectorPool
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.model.backend import Datastore
from esc_orch.model.config import VimConnector as ConnectorModel
from esc_orch.model.errors import RpcError
from esc_orch.model.events import parse_esc_event
from esc_orch.model.failure import FailureCause
from esc_orch.model.lifecycle import DeploymentState, VmLifecycleState
from esc_orch.model.schema import EO_NS, ESC_NS, NC_NS
from esc_orch.model.vim import ConnectorConfig, PowerState
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.northbound.esc_rpcs import ActionType, ServiceActionRequest, VmActionRequest
from esc_orch.store.datastore import SqlDatastore
from esc_orch.vim.errors import PermanentVimError
from esc_orch.vim.fake import FakeCluster, FakeConnector, FakeHost
from esc_orch.vim.protocol import Connector

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
KEY = ("name1", "dep")


def _config(path: Path, *, fake: bool = True) -> etree._Element:
    text = path.read_text().split("-->", 1)[1]
    if fake:
        text = text.replace("<type>CSP</type>", "<type>FAKE</type>")
    config = etree.Element(f"{{{NC_NS}}}config")
    config.append(parse_xml(text.encode()))
    return config


class Lab:
    """Fake hosts behind the connectors of examples/vim_connectors.xml (as FAKE)."""

    def __init__(self, tmp: Path) -> None:
        self.store = SqlDatastore.open(data_dir=tmp)
        self.cluster = FakeCluster()
        self.hosts = {
            f"CSP-{i}": FakeHost(name=f"csp-{i}", cluster=self.cluster) for i in (1, 2, 3)
        }
        self.built: list[str] = []

    def factory(self, config: ConnectorConfig) -> Connector:
        self.built.append(config.id)
        return FakeConnector(config=config, host=self.hosts[config.id])

    async def service(self) -> LifecycleService:
        service = LifecycleService(
            datastore=self.store,
            settings=LifecycleSettings(retry_attempts=2, retry_base_delay=0.001),
            factory=self.factory,
        )
        await service.start()
        service.actions = LifecycleActions(service=service)
        await service.actions.settle_owed(await service.store.records())
        return service

    async def edit(self, service: LifecycleService, config: etree._Element) -> None:
        await asyncio.to_thread(self.store.edit_config, target=Datastore.RUNNING, config=config)
        await asyncio.sleep(0)  # the commit listener hands over with call_soon_threadsafe
        await service.reactor.drain()

    def logged(self) -> list[str]:
        """The lifecycle's events in the durable log (VM_* and SERVICE_*, not config events)."""
        out = []
        for logged in self.store.events.read(limit=1000):
            event = parse_esc_event(etree.fromstring(logged.payload))
            if not str(event.event.type).startswith(("VM_", "SERVICE_")):
                continue
            failed = "" if str(event.status) == "SUCCESS" else "/FAILURE"
            out.append(f"{event.event.type}{failed}")
        return out


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    made = Lab(tmp_path)
    yield made
    made.store.close()


async def test_commit_deploys_and_actions_set_flags_that_survive_a_restart(lab: Lab) -> None:
    service = await lab.service()
    await lab.edit(service, _config(EXAMPLES / "vim_connectors.xml"))
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))
    record = service.reactor.status(*KEY)
    assert record is not None and record.state is DeploymentState.ACTIVE
    (vm,) = record.vms
    assert list(lab.hosts["CSP-1"].vms) == [vm.name]
    assert lab.logged() == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]

    assert service.actions is not None
    await service.actions.vm_action(
        VmActionRequest(action=ActionType.STOP, vm_name=vm.name), session_id=1
    )
    await service.reactor.wait(*KEY)
    for task in list(service._tasks):  # the action's follow-up (service event, settle)
        await task
    record = service.reactor.status(*KEY)
    assert record is not None and record.wanted_off() == {vm.name}
    assert lab.hosts["CSP-1"].vms[vm.name].power is PowerState.STOPPED
    assert lab.logged()[-1] == "VM_STOPPED"
    await service.actions.vm_action(
        VmActionRequest(action=ActionType.DISABLE_MONITOR, vm_name=vm.name), session_id=1
    )
    assert lab.logged()[-1] == "VM_MONITOR_UNSET"
    with pytest.raises(RpcError, match="cannot reboot"):
        await service.actions.service_action(
            ServiceActionRequest(action=ActionType.REBOOT, tenant_name="name1", dep_name="dep"),
            session_id=1,
        )
    await service.stop()

    # A new service on the same store: the record alone says the VM is wanted off.
    again = await lab.service()
    await again.reactor.drain()
    restored = again.reactor.status(*KEY)
    assert restored is not None
    assert restored.wanted_off() == {vm.name} and restored.unmonitored() == {vm.name}
    assert restored.vms[0].identity == vm.identity
    assert lab.hosts["CSP-1"].vms[vm.name].power is PowerState.STOPPED  # not started again
    assert list(lab.hosts["CSP-1"].vms) == [vm.name]
    await again.stop()


async def test_a_failed_deployment_shows_its_cause_in_opdata(lab: Lab) -> None:
    service = await lab.service()
    await lab.edit(service, _config(EXAMPLES / "vim_connectors.xml"))
    lab.hosts["CSP-1"].fail_next("ensure_vm", PermanentVimError("image not found on host"))
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))
    record = service.reactor.status(*KEY)
    assert record is not None and record.state is DeploymentState.ERROR
    assert record.last_failure is not None
    assert record.last_failure.cause is FailureCause.VIM_REJECTED
    assert record.vms[0].state is VmLifecycleState.ERROR
    assert lab.logged() == ["VM_DEPLOYED/FAILURE", "SERVICE_ALIVE/FAILURE"]

    ns = {"e": ESC_NS, "eo": EO_NS}
    tenants = service.opdata()
    failure = tenants.find("e:tenant/e:deployments/eo:last_failure", ns)
    assert failure is not None
    assert failure.findtext("eo:cause", namespaces=ns) == "vim-rejected"
    assert "image not found on host" in (failure.findtext("eo:message", namespaces=ns) or "")
    assert failure.findtext("eo:vim_id", namespaces=ns) == "CSP-1"
    vm_failure = tenants.find("e:tenant/e:deployments/e:vm_group/e:vm_instance/eo:last_failure", ns)
    assert vm_failure is not None
    # The store keeps the very record, failure included (what a restart resumes from).
    await service.store.flush()
    (kept,) = await service.store.records()
    assert kept == record
    await service.stop()


async def test_the_pool_keeps_one_connector_per_id_until_its_settings_change() -> None:
    built: list[str] = []

    def factory(config: ConnectorConfig) -> Connector:
        built.append(config.id)
        return FakeConnector(config=config, host=FakeHost(name="h", cluster=FakeCluster()))

    model = ConnectorModel.model_validate({"id": "C", "type": "FAKE"})
    pool = ConnectorPool(factory=factory)
    with pytest.raises(LookupError):
        pool("C")
    pool.configure("C", model)
    first = pool("C")
    assert pool("C") is first and built == ["C"]
    pool.configure("C", model)  # the same settings (both listeners call it): kept
    assert pool("C") is first
    changed = model.model_copy(update={"type": "fake"})
    pool.configure("C", changed)
    assert pool("C") is not first and built == ["C", "C"]
    pool.configure("C", None)
    with pytest.raises(LookupError):
        pool("C")
    await pool.close()
