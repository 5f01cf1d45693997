"""Nothing stuck: errored deployments retried with bounded backoff, edits and RPCs re-arm.

LifecycleService on a real SQLite store and fake VIMs (as in test_lifecycle_service.py): an
identical edit of a failed deployment runs it again at once; the backoff of the periodic retry
is computed on given times (no sleeps); eo:confirm-host-down is durable and shown; an unknown
vim_id is refused with its path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from esc_orch.daemon.moves import MoveControls, fence_config
from esc_orch.daemon.vim_supervisor import VimSupervisor
from esc_orch.fence import FenceError, FenceFailureKind, create_fence_agent
from esc_orch.model.config import VimConnector
from esc_orch.model.convert import unit_model
from esc_orch.model.errors import RpcError
from esc_orch.model.lifecycle import DeploymentState
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.vim.errors import PermanentVimError
from unit.daemon.test_lifecycle_service import EXAMPLES, KEY, Lab, _config


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    made = Lab(tmp_path)
    yield made
    made.store.close()


async def test_an_identical_edit_of_a_failed_deployment_runs_it_again(lab: Lab) -> None:
    service = await lab.service()
    await lab.edit(service, _config(EXAMPLES / "vim_connectors.xml"))
    lab.hosts["CSP-1"].fail_next("ensure_vm", PermanentVimError("image not found on host"))
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))
    record = service.reactor.status(*KEY)
    assert record is not None and record.state is DeploymentState.ERROR
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))  # identical
    record = service.reactor.status(*KEY)
    assert record is not None and record.state is DeploymentState.ACTIVE
    assert len(lab.hosts["CSP-1"].vms) == 1
    # A healthy deployment edited identically is left alone (no run, no event).
    before = lab.logged()
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))
    assert lab.logged() == before
    await service.stop()


async def test_errored_deployments_are_retried_with_bounded_backoff(lab: Lab) -> None:
    service = await lab.service()
    base, cap = service.settings.error_retry_delay, service.settings.resync_interval
    due: list[float] = []
    now = 0.0
    for _ in range(12):
        assert not service._errored_due(KEY, now)  # arms the next try
        now = service._retry_at[KEY]
        due.append(now)
        assert service._errored_due(KEY, now)  # due: retried
    gaps = [b - a for a, b in zip([0.0, *due], due, strict=False)]
    assert gaps[:3] == [base, 2 * base, 4 * base]
    assert max(gaps) == cap and gaps[-1] == cap  # bounded by resync_interval
    await service.stop()


async def test_confirm_host_down_is_durable_and_an_unknown_vim_is_refused(lab: Lab) -> None:
    service = await lab.service()
    await lab.edit(service, _config(EXAMPLES / "vim_connectors.xml"))
    supervisor = VimSupervisor(emit=lambda _events: None, clock=service.proof_sources._clock)
    controls = MoveControls(lifecycle=service, supervisor=supervisor)
    await controls.confirm_host_down("CSP-1", user="alice")
    confirmed = service.proof_sources.confirmation("CSP-1")
    assert confirmed is not None and confirmed.by == "alice"
    with pytest.raises(RpcError, match="no VIM connector 'CSP-9'") as refused:
        await controls.confirm_host_down("CSP-9", user="alice")
    assert refused.value.path == "/eo:confirm-host-down/eo:vim_id"
    await service.stop()
    again = await lab.service()  # a restart keeps it
    kept = again.proof_sources.confirmation("CSP-1")
    assert kept is not None and (kept.by, kept.at) == ("alice", confirmed.at)
    await again.stop()


def test_a_fence_agent_is_read_from_the_connectors_eo_fence_agent() -> None:
    xml = (
        '<vim_connector xmlns="http://www.cisco.com/esc/esc"><id>CSP-1</id><type>CSP</type>'
        "<properties>"
        "<property><name>url</name><value>http://127.0.0.1:1</value></property>"
        "</properties><users>"
        "<user><id>admin</id><credentials><properties><property><name>password</name>"
        "<value>vim-pw</value></property></properties></credentials></user>"
        "</users>"
        '<fence_agent xmlns="urn:esc-orch:yang:esc-orch"><type>CSP_SIM_POWER</type>'
        "<url>http://127.0.0.1:2</url><username>admin</username><password>bmc-pw</password>"
        "<timeout>5</timeout><properties><property><name>extra</name><value>x</value>"
        "</property></properties></fence_agent></vim_connector>"
    )
    model = unit_model("vim_connector", parse_xml(xml.encode()))
    assert isinstance(model, VimConnector)
    found = fence_config(model)
    assert found is not None
    config, host = found
    assert (config.type, host) == ("CSP_SIM_POWER", "CSP-1")
    assert config.properties == {
        "url": "http://127.0.0.1:2",
        "timeout": "5",
        "host_name": "CSP-1",
        "extra": "x",
    }
    assert config.credentials is not None
    assert (config.credentials.user, config.credentials.password) == ("admin", "bmc-pw")
    assert "pw" not in repr(config.properties)
    assert "bmc-pw" not in repr(model)


def test_a_connector_without_eo_fence_agent_has_no_fence_agent() -> None:
    xml = '<vim_connector xmlns="http://www.cisco.com/esc/esc"><id>CSP-1</id><type>CSP</type>'
    model = unit_model("vim_connector", parse_xml((xml + "</vim_connector>").encode()))
    assert fence_config(model) is None


def test_the_agent_checks_its_configuration_as_it_did_when_fencing() -> None:
    """The agent's own check (run at edit time) is also what refuses to fence (misconfigured)."""
    xml = (
        '<vim_connector xmlns="http://www.cisco.com/esc/esc"><id>CSP-1</id><type>CSP</type>'
        '<fence_agent xmlns="urn:esc-orch:yang:esc-orch"><type>CSP_SIM_POWER</type>'
        "<url>ftp://x</url></fence_agent></vim_connector>"
    )
    found = fence_config(unit_model("vim_connector", parse_xml(xml.encode())))
    assert found is not None
    agent = create_fence_agent(found[0])
    with pytest.raises(FenceError) as info:
        asyncio.run(agent.fence(host="CSP-1"))
    assert info.value.failure.kind is FenceFailureKind.MISCONFIGURED
    assert "must be http(s)" in info.value.failure.detail


async def test_an_undeploy_that_failed_is_retried_with_bounded_backoff(lab: Lab) -> None:
    """Found by the fault matrix (undeploy x host-kill / auth): the errored-deployment retry
    walked the configured deployments only, so a failed undeploy (the deployment deleted, its
    VM still on the host) waited for a re-arm."""
    from esc_orch.model.schema import ESC_NS, NC_NS  # noqa: PLC0415

    service = await lab.service()
    await lab.edit(service, _config(EXAMPLES / "vim_connectors.xml"))
    await lab.edit(service, _config(EXAMPLES / "deploy_csp_1.xml", fake=False))
    assert len(lab.hosts["CSP-1"].vms) == 1
    lab.hosts["CSP-1"].fail_next("delete_vm", PermanentVimError("host refused the delete"))
    delete = parse_xml(
        f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><esc_datamodel xmlns="{ESC_NS}"><tenants>'
        '<tenant><name>name1</name><deployments><deployment nc:operation="delete">'
        "<name>dep</name></deployment></deployments></tenant></tenants></esc_datamodel>"
        "</config>".encode()
    )
    await lab.edit(service, delete)
    record = service.reactor.status(*KEY)
    assert record is not None and record.state is DeploymentState.ERROR
    assert len(lab.hosts["CSP-1"].vms) == 1  # the VM is still there
    service._resync_pass(0.0, full=False)  # arms the first retry
    await service.reactor.drain()
    assert len(lab.hosts["CSP-1"].vms) == 1
    service._resync_pass(service._retry_at[KEY], full=False)  # due: retried
    await service.reactor.drain()
    assert len(lab.hosts["CSP-1"].vms) == 0
    assert service.reactor.status(*KEY) is None
    await service.stop()
