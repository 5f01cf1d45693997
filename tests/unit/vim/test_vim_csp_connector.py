"""CSP connector: the pure mapping, error classes, retries under a recording sleep, no leaks.

The HTTP cases use a tiny scripted aiohttp server on 127.0.0.1 inside the test process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import pytest
from aiohttp import web

from esc_orch.csp_sim.service import ServiceConfig
from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import (
    ConnectorConfig,
    Credentials,
    Day0File,
    PermanentVimError,
    PowerState,
    Storage,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VimNotFound,
)
from esc_orch.vim.csp import CspConnector, classify
from esc_orch.vim.csp_mapping import service_to_state, spec_to_service

PASSWORD = "s3cr3t-never-logged"


def test_spec_maps_to_a_service_the_emulator_accepts() -> None:
    spec = sample_spec("vm1", storage=Storage.GLUSTER)
    spec = replace(spec, day0=(Day0File(dst="iosxe_config.txt", content=b"hostname r1\n"),))
    body = spec_to_service(spec)
    parsed = ServiceConfig.parse(body)
    assert (parsed.numcpu, parsed.memory, parsed.disk_size) == (2, 512, 1)
    assert parsed.iso_name == "csr1000v.qcow2"
    assert parsed.disk_storage_name.value == "gluster"
    assert [v.nic for v in parsed.vnics] == [0, 1]
    assert parsed.vnics[1].vlan == "10" and parsed.vnics[1].tagged
    assert parsed.serial_ports[0].serial_type == "console"
    assert parsed.day0[0].content_base64 == "aG9zdG5hbWUgcjEK"


def test_service_maps_back_to_state() -> None:
    raw = spec_to_service(sample_spec("vm1"))["service"] | {
        "uuid": "u-1",
        "host_name": "CSP-2",
        "oper_status": "stopped",
        "power_status_reason": "disk locked",
    }
    raw["vnics"]["vnic"][0]["port_id"] = "p-0"
    state = service_to_state(raw, host="fallback")
    assert (state.name, state.host, state.vim_id) == ("vm1", "CSP-2", "u-1")
    assert state.power is PowerState.STOPPED and state.reason == "disk locked"
    assert state.disk_mb == 1024 and state.storage is Storage.LOCAL
    assert state.interfaces[0].port_id == "p-0"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, "", VimAuthError),
        (403, "", VimAuthError),
        (404, "", VimNotFound),
        (409, '{"errors":{"error":[{"error-tag":"in-use","error-message":"x"}]}}', VimConflict),
        (400, "", PermanentVimError),
        (415, "", PermanentVimError),
        (500, "", TemporaryVimError),
        (503, "", TemporaryVimError),
    ],
)
def test_classify(status: int, body: str, cls: type[Exception]) -> None:
    assert isinstance(classify(status, text=body, what="GET /x"), cls)


def _err(tag: str, message: str, app_tag: str | None = None) -> str:
    error = {"error-tag": tag, "error-message": message}
    if app_tag is not None:
        error["error-app-tag"] = app_tag
    return json.dumps({"errors": {"error": [error]}})


@pytest.mark.parametrize(
    ("body", "resource"),
    [
        (_err("resource-denied", "not enough memory for vm1", "memory"), "memory"),
        (_err("resource-denied", "not enough memory for vm1"), "memory"),  # no app tag
        (_err("resource-denied", "not enough vCPUs for vm1"), "vcpus"),
        (_err("resource-denied", "quota"), None),
    ],
)
def test_a_409_for_lack_of_resources_is_a_capacity_error(body: str, resource: str | None) -> None:
    """It used to be a VimConflict, which the reactor reported as the disk being in use."""
    err = classify(409, text=body, what="POST /api/running/services")
    assert isinstance(err, VimCapacityError) and not isinstance(err, VimConflict)
    assert err.resource == resource


@pytest.mark.parametrize(
    "body",
    [
        _err("in-use", "cannot power on vm1: disk vm1.qcow2 is locked", "disk-locked"),
        _err("in-use", "disk vm1.qcow2 is locked by another process"),  # no app tag
    ],
)
def test_a_409_for_a_locked_disk_is_disk_in_use(body: str) -> None:
    assert isinstance(classify(409, text=body, what="PATCH /x"), VimDiskInUse)


def test_other_409s_stay_plain_conflicts() -> None:
    err = classify(409, text=_err("in-use", "service vm1 is not running"), what="POST /x")
    assert type(err) is VimConflict


@dataclass
class Script:
    """Answers to give, in order; the last one repeats."""

    answers: list[Callable[[web.Request], web.StreamResponse]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def handler(request: web.Request) -> web.StreamResponse:
        script.seen.append(request.headers.get("Authorization", ""))
        answer = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
        result = answer(request)
        if isinstance(result, web.StreamResponse):
            return result
        return await result  # type: ignore[unreachable]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", script
    await runner.cleanup()


def _connector(url: str, sleeps: list[float], **props: str) -> CspConnector:
    async def sleep(s: float) -> None:
        sleeps.append(s)

    config = ConnectorConfig(
        id="csp-1",
        type="CSP",
        properties={"url": url, "retries": "3", "backoff": "0.25", **props},
        credentials=Credentials(user="admin", password=PASSWORD),
    )
    return CspConnector(config=config, sleep=sleep)


def _json(status: int, text: str = "{}") -> Callable[[web.Request], web.StreamResponse]:
    return lambda _r: web.Response(status=status, text=text, content_type="application/json")


async def test_retries_5xx_with_backoff_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [_json(503), _json(502), _json(200, '{"services":{"service":[]}}')]
    sleeps: list[float] = []
    connector = _connector(url, sleeps)
    try:
        assert await connector.list_vms() == ()
    finally:
        await connector.close()
    assert sleeps == [1.0, 1.0]  # Retry-After absent: at least 1 s, above the 0.25/0.5 steps
    assert len(script.seen) == 3


async def test_gives_up_after_the_last_try_and_never_retries_4xx(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.answers = [_json(503)]
    sleeps: list[float] = []
    connector = _connector(url, sleeps)
    try:
        with pytest.raises(TemporaryVimError):
            await connector.list_vms()
        assert len(script.seen) == 3
        script.answers = [_json(400)]
        script.seen.clear()
        with pytest.raises(PermanentVimError):
            await connector.list_vms()
        assert len(script.seen) == 1
    finally:
        await connector.close()


async def test_timeout_is_temporary(server: tuple[str, Script]) -> None:
    url, script = server

    async def slow(_r: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="{}")

    script.answers = [slow]  # type: ignore[list-item]
    connector = _connector(url, [], timeout="0.1", retries="1")
    try:
        with pytest.raises(TemporaryVimError):
            await connector.list_vms()
    finally:
        await connector.close()


async def test_connection_refused_is_temporary() -> None:
    connector = _connector("http://127.0.0.1:9", [], retries="1")
    try:
        with pytest.raises(TemporaryVimError):
            await connector.describe()
    finally:
        await connector.close()


async def test_password_is_never_logged_nor_in_errors(
    server: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = server
    caplog.set_level(logging.DEBUG)
    script.answers = [_json(401, '{"errors":{"error":[{"error-message":"denied"}]}}')]
    connector = _connector(url, [])
    try:
        with pytest.raises(VimAuthError) as info:
            await connector.list_vms()
        script.answers = [_json(503)]
        with pytest.raises(TemporaryVimError) as info2:
            await connector.get_vm(name="x")
    finally:
        await connector.close()
    assert script.seen and script.seen[0].startswith("Basic ")
    assert caplog.records, "the connector logs its requests"
    for text in (caplog.text, str(info.value), str(info2.value), repr(connector)):
        assert PASSWORD not in text


def test_config_errors_are_permanent() -> None:
    with pytest.raises(PermanentVimError, match="url"):
        CspConnector(config=ConnectorConfig(id="x", type="CSP"))
    with pytest.raises(PermanentVimError, match="credentials"):
        CspConnector(config=ConnectorConfig(id="x", type="CSP", properties={"url": "http://h"}))
