"""Faults that start while a host runs: a new password (401 from then on), a fault file that
makes it slow or answer 503, storage that fills up (409 resource-denied, ``disk-space``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import Storage, VimAuthError, VimCapacityError
from esc_orch.vim.csp import CspConnector

pytestmark = pytest.mark.functional
FAST = {"retries": "1", "timeout": "3", "poll_interval": "0.02"}


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[EmulatorHost]:
    h = EmulatorHost(
        name="CSP-1",
        root=tmp_path,
        extra_args=[
            "--fault-file", str(tmp_path / "faults.json"),
            "--local-capacity-gb", "25", "--gluster-capacity-gb", "25",
        ],
    )  # fmt: skip
    try:
        h.start()
        yield h
    finally:
        h.close()


async def test_a_changed_password_is_refused_from_then_on_and_restored(
    host: EmulatorHost,
) -> None:
    status, _, _ = await host.request("GET", "/api/running/services")
    assert status == 200
    write(host.password_file, "rotated-by-an-admin\n")
    status, headers, body = await host.request("GET", "/api/running/services")
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    assert body["errors"]["error"][0]["error-tag"] == "access-denied"
    conn = CspConnector(config=host.config(**FAST))
    try:
        with pytest.raises(VimAuthError):
            await conn.list_vms()
        write(host.password_file, host.password + "\n")
        assert await conn.list_vms() == ()
    finally:
        await conn.close()


async def test_the_fault_file_changes_latency_and_error_rate_while_it_runs(
    host: EmulatorHost, tmp_path: Path
) -> None:
    faults = tmp_path / "faults.json"
    write(faults, json.dumps({"error_rate": 1.0}))
    status, headers, _ = await host.request("GET", "/api/running/services")
    assert status == 503 and headers["Retry-After"] == "1"
    write(faults, json.dumps({"latency_ms": 400}))
    t0 = time.monotonic()
    status, _, _ = await host.request("GET", "/api/running/services")
    assert status == 200 and time.monotonic() - t0 >= 0.4
    write(faults, "")  # back to the command line's values
    t0 = time.monotonic()
    status, _, _ = await host.request("GET", "/api/running/services")
    assert status == 200 and time.monotonic() - t0 < 0.4
    write(faults, "{not json")  # ignored: the last good values stay
    status, _, _ = await host.request("GET", "/api/running/services")
    assert status == 200


async def test_full_storage_refuses_a_new_disk_with_the_confd_error(
    host: EmulatorHost,
) -> None:
    conn = CspConnector(config=host.config(**FAST))
    try:
        await conn.ensure_vm(spec=sample_spec("vm1", storage=Storage.GLUSTER))
        # another tenant's volume takes the rest of the storage
        os.truncate(_touch(host.gluster_dir / "other-tenant.img"), 24 << 30)
        spec = sample_spec("vm2", storage=Storage.GLUSTER)
        status, _, body = await host.request(
            "POST", "/api/running/services", body={"service": _service(spec.name)}
        )
        error = body["errors"]["error"][0]
        assert status == 409 and error["error-tag"] == "resource-denied"
        assert error["error-app-tag"] == "disk-space"
        assert "not enough disk space on storage gluster" in error["error-message"]
        assert not (host.gluster_dir / "vm2.qcow2").exists()
        status, _, body = await host.request("GET", "/api/running/cluster")
        free = {s["name"]: s["free_mb"] for s in body["cluster"]["storages"]["storage"]}
        assert free["gluster"] == 0
        with pytest.raises(VimCapacityError, match="disk space"):
            await conn.ensure_vm(spec=spec)
        assert [vm.name for vm in await conn.list_vms()] == ["vm1"]
        (host.gluster_dir / "other-tenant.img").unlink()  # the space is freed
        await conn.ensure_vm(spec=spec)
    finally:
        await conn.close()


def _service(name: str) -> dict[str, object]:
    return {
        "name": name, "numcpu": 1, "memory": 512, "disk_size": 10,
        "iso_name": "x.qcow2", "disk_storage_name": "gluster",
    }  # fmt: skip


def _touch(path: Path) -> Path:
    path.touch()
    return path
