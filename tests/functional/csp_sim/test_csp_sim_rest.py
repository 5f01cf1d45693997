"""The REST dialect over the wire: auth, ConfD errors, resource and cluster views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esc_orch.testing.emulator import EmulatorHost

pytestmark = pytest.mark.functional
SERVICES = "/api/running/services"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHost]:
    with EmulatorHost(name="CSP-1", root=tmp_path_factory.mktemp("rest")) as h:
        yield h


def _service(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "service": {
            "name": name,
            "disk_size": "1",
            "power": "on",
            "iso_name": "csr.qcow2",
            "numcpu": 1,
            "memory": 512,
            "vnics": {
                "vnic": [
                    {
                        "nic": 0,
                        "type": "access",
                        "tagged": "false",
                        "vlan": "1",
                        "model": "virtio",
                        "network_name": "Eth0-2",
                    }
                ]
            },
            **extra,
        }
    }


async def test_missing_or_bad_credentials_get_401_with_challenge(host: EmulatorHost) -> None:
    status, headers, body = await host.request("GET", SERVICES, auth=("admin", "wrong"))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert body["errors"]["error"][0]["error-tag"] == "access-denied"
    status, _, _ = await host.request("GET", SERVICES, auth=("root", host.password))
    assert status == 401


async def test_create_get_patch_delete(host: EmulatorHost) -> None:
    status, headers, _ = await host.request("POST", SERVICES, body=_service("r1"))
    assert status == 201 and headers["Location"].endswith("/service/r1")
    status, _, body = await host.request("GET", f"{SERVICES}/service/r1")
    assert status == 200 and body["service"]["oper_status"] == "running"
    status, _, _ = await host.request(
        "PATCH", f"{SERVICES}/service/r1", body={"service": {"power": "off"}}
    )
    assert status == 204
    _, _, body = await host.request("GET", SERVICES)
    assert [s["oper_status"] for s in body["services"]["service"] if s["name"] == "r1"] == [
        "stopped"
    ]
    assert (await host.request("DELETE", f"{SERVICES}/service/r1"))[0] == 204
    assert (await host.request("DELETE", f"{SERVICES}/service/r1"))[0] == 404


@pytest.mark.parametrize(
    "case",
    [
        ("POST", SERVICES, {"raw": "{not json"}, 400, "malformed-message"),
        ("POST", SERVICES, {"body": {"service": {"name": "x"}}}, 400, "missing-element"),
        ("POST", SERVICES, {"body": _service("x", numcpu="many")}, 400, "invalid-value"),
        (
            "POST",
            SERVICES,
            {"body": _service("x"), "content_type": "application/xml"},
            415,
            "malformed-message",
        ),
        ("GET", f"{SERVICES}/service/nope", {}, 404, "data-missing"),
        (
            "PATCH",
            f"{SERVICES}/service/nope",
            {"body": {"service": {"power": "on"}}},
            404,
            "data-missing",
        ),
        ("PUT", SERVICES, {"body": {}}, 405, "operation-not-supported"),
        ("GET", "/api/running/resources/resource/other", {}, 404, "data-missing"),
    ],
)
async def test_bad_input_gets_confd_errors(
    host: EmulatorHost, case: tuple[str, str, dict[str, Any], int, str]
) -> None:
    method, path, kwargs, status, tag = case
    got, headers, body = await host.request(method, path, **kwargs)
    assert got == status
    assert body["errors"]["error"][0]["error-tag"] == tag
    assert body["errors"]["error"][0]["error-urlpath"] == path
    if status == 405:
        assert "GET" in headers["Allow"]


async def test_creating_an_existing_service_is_409(host: EmulatorHost) -> None:
    assert (await host.request("POST", SERVICES, body=_service("dup", power="off")))[0] == 201
    status, _, body = await host.request("POST", SERVICES, body=_service("dup", power="off"))
    assert status == 409 and body["errors"]["error"][0]["error-tag"] == "data-exists"
    await host.request("DELETE", f"{SERVICES}/service/dup")


async def test_resource_and_cluster_views(host: EmulatorHost) -> None:
    status, _, body = await host.request("GET", "/api/running/resources/resource/csp-2100")
    assert status == 200
    assert {
        "ip_address",
        "host_name",
        "ram_total_mb",
        "ram_used_mb",
        "num_cpus_total",
        "num_cpus_used",
        "num_service",
    } <= set(body["resource"])
    _, _, body = await host.request("GET", "/api/running/cluster")
    assert body["cluster"]["name"] == "Cluster_Test"
    names = {s["name"]: s["shared"] for s in body["cluster"]["storages"]["storage"]}
    assert names == {"local": False, "gluster": True}


def test_state_file_is_json_and_not_world_readable_secret(host: EmulatorHost) -> None:
    assert host.password not in Path(host.state_file).read_text()
