"""Actions racing the runs around them (both found by the load run, tests/reliability/load.py).

An action's follow-up judges the action's own run, not a later one:
``LifecycleActions._follow`` logs the VM events of an action whose run needed no step (e.g. a
STOP of a stopped VM) and then a serviceAction's SERVICE_* event. It used to wait until the
deployment was idle and read the *last* run's outcome: when an edit arrived while the action's
run was going on (a client that sends its next edit as soon as ``VM_REBOOTED`` arrives), the
last run was the edit's — no step — and the action's VM event was logged a second time.

An action sent as soon as the previous run's service event has arrived, as the ``in-use``
refusal tells clients to, is accepted: the run's worker ends just after that event is
published, and the action used to be refused in that window.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.daemon.actions import LifecycleActions
from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.model.backend import Datastore
from esc_orch.model.events import parse_esc_event
from esc_orch.model.schema import NC_NS
from esc_orch.model.vim import ConnectorConfig, VmState
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.northbound.esc_rpcs import ActionType, ServiceActionRequest, VmActionRequest
from esc_orch.store.datastore import SqlDatastore
from esc_orch.vim.fake import FakeCluster, FakeConnector, FakeHost
from esc_orch.vim.protocol import Connector

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
KEY = ("name1", "dep")


def _config(name: str, *, fake: bool = False, wait: int = 60) -> etree._Element:
    text = (EXAMPLES / name).read_text().split("-->", 1)[1]
    if fake:
        text = text.replace("<type>CSP</type>", "<type>FAKE</type>")
    text = text.replace(
        "<recovery_wait_time>60</recovery_wait_time>",
        f"<recovery_wait_time>{wait}</recovery_wait_time>",
    )
    config = etree.Element(f"{{{NC_NS}}}config")
    config.append(parse_xml(text.encode()))
    return config


class GatedConnector(FakeConnector):
    """A fake connector whose reboot waits for the test to open the gate."""

    entered: asyncio.Event
    gate: asyncio.Event

    async def reboot(self, *, name: str) -> VmState:
        GatedConnector.entered.set()
        await GatedConnector.gate.wait()
        return await super().reboot(name=name)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.store = SqlDatastore.open(data_dir=tmp)
        cluster = FakeCluster()
        self.hosts = {f"CSP-{i}": FakeHost(name=f"csp-{i}", cluster=cluster) for i in (1, 2, 3)}

    def factory(self, config: ConnectorConfig) -> Connector:
        return GatedConnector(config=config, host=self.hosts[config.id])

    async def service(self) -> LifecycleService:
        service = LifecycleService(
            datastore=self.store,
            settings=LifecycleSettings(retry_attempts=2, retry_base_delay=0.001),
            factory=self.factory,
        )
        await service.start()
        service.actions = LifecycleActions(service=service)
        return service

    async def commit(self, config: etree._Element) -> None:
        await asyncio.to_thread(self.store.edit_config, target=Datastore.RUNNING, config=config)
        await asyncio.sleep(0)  # the commit listener hands over with call_soon_threadsafe

    def logged(self) -> list[str]:
        out = []
        for logged in self.store.events.read(limit=1000):
            event = parse_esc_event(etree.fromstring(logged.payload))
            if str(event.depname) == KEY[1]:
                out.append(str(event.event.type))
        return out


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    GatedConnector.entered = asyncio.Event()
    GatedConnector.gate = asyncio.Event()
    made = Lab(tmp_path)
    yield made
    made.store.close()


async def _idle(service: LifecycleService) -> None:
    await service.reactor.drain()
    while service._tasks:  # the actions' follow-ups
        await asyncio.gather(*list(service._tasks))
    await service.reactor.drain()


@pytest.mark.parametrize("service_action", [False, True], ids=["vmAction", "serviceAction"])
async def test_an_edit_during_a_reboot_does_not_log_the_reboot_twice(
    lab: Lab, service_action: bool
) -> None:
    service = await lab.service()
    GatedConnector.gate.set()  # no reboot yet: nothing to hold
    await lab.commit(_config("vim_connectors.xml", fake=True))
    await lab.commit(_config("deploy_csp_1.xml"))
    await _idle(service)
    record = service.reactor.status(*KEY)
    assert record is not None
    (vm,) = record.vms
    assert service.actions is not None
    GatedConnector.gate.clear()

    if service_action:
        await service.actions.service_action(
            ServiceActionRequest(action=ActionType.REBOOT, tenant_name="name1", dep_name="dep"),
            session_id=1,
        )
    else:
        await service.actions.vm_action(
            VmActionRequest(action=ActionType.REBOOT, vm_name=vm.name), session_id=1
        )
    await asyncio.wait_for(GatedConnector.entered.wait(), 10)  # the reboot run is under way
    await lab.commit(_config("deploy_csp_1.xml", wait=61))  # an update no VM sees, queued
    GatedConnector.gate.set()
    await _idle(service)

    tail = lab.logged()[3:]  # after VM_DEPLOYED, VM_ALIVE, SERVICE_ALIVE
    rebooted = ["VM_REBOOTED", "SERVICE_REBOOTED"] if service_action else ["VM_REBOOTED"]
    assert sorted(tail) == sorted([*rebooted, "SERVICE_UPDATED"]), tail
    assert tail[0] == "VM_REBOOTED"
    await service.stop()


async def test_an_action_sent_on_the_service_event_is_not_refused_in_use(lab: Lab) -> None:
    service = await lab.service()
    GatedConnector.gate.set()
    await lab.commit(_config("vim_connectors.xml", fake=True))
    await lab.commit(_config("deploy_csp_1.xml"))
    await _idle(service)
    record = service.reactor.status(*KEY)
    assert record is not None
    (vm,) = record.vms
    actions = service.actions
    assert actions is not None
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Task[None]] = []
    request = VmActionRequest(action=ActionType.REBOOT, vm_name=vm.name)
    arrived = asyncio.Event()

    def send() -> None:  # what a client does on the event: send the action at once
        sent.append(loop.create_task(actions.vm_action(request, session_id=1)))
        arrived.set()

    def on_commit(events: object) -> None:  # the committing thread, as the NETCONF bus is told
        for logged in events:  # type: ignore[attr-defined]
            if logged.event_type == "SERVICE_UPDATED" and not arrived.is_set():
                loop.call_soon_threadsafe(send)

    lab.store.events.add_listener(on_commit)
    await lab.commit(_config("deploy_csp_1.xml", wait=61))  # SERVICE_UPDATED, no VM step
    await asyncio.wait_for(arrived.wait(), 10)
    await sent[0]  # accepted, not in-use
    await _idle(service)
    assert lab.logged()[3:] == ["SERVICE_UPDATED", "VM_REBOOTED"]
    await service.stop()
