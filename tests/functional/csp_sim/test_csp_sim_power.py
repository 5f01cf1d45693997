"""Live: the cluster's power controllers and fault commands, port ids across a move, capacity.

Everything runs against real ``esc-csp-sim`` processes over HTTP on 127.0.0.1: the disk lock
a running VM holds is a real OFD lock, powering a host off is a real SIGKILL.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from esc_orch.csp_sim.disks import locked_elsewhere
from esc_orch.fence import FenceMethod, HostPower, create_fence_agent
from esc_orch.testing.emulator import EmulatorCluster, EmulatorHost
from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import (
    PowerState,
    Storage,
    TemporaryVimError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VmSpec,
)
from esc_orch.vim.csp import CspConnector

pytestmark = pytest.mark.functional

FAST = {"retries": "1", "timeout": "2", "poll_interval": "0.02"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path, hosts=2) as c:
        yield c


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _power(cluster: EmulatorCluster, name: str, body: dict[str, str] | None) -> object:
    host = cluster.hosts[name]
    headers = _basic(host.power_user, host.power_password)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as s:
        if body is None:
            async with s.get(host.power_url + "/power") as resp:
                return resp.status, await resp.json()
        async with s.post(host.power_url + "/power", json=body) as resp:
            return resp.status, await resp.json()


async def test_power_off_releases_the_disk_lock_and_power_on_brings_the_host_back(
    cluster: EmulatorCluster,
) -> None:
    one = CspConnector(config=cluster.config("CSP-1", **FAST))
    two = CspConnector(config=cluster.config("CSP-2", **FAST))
    spec = sample_spec("vm-fenced", storage=Storage.GLUSTER)
    disk = cluster.root / "gluster" / "vm-fenced.qcow2"
    try:
        assert (await one.ensure_vm(spec=spec)).power is PowerState.RUNNING
        assert locked_elsewhere(disk)
        # CSP-1 hangs holding the lock: CSP-2 is refused, as "disk in use", not capacity.
        assert cluster.command("partition CSP-1")[-1] == "OK partition CSP-1 paused"
        with pytest.raises(TemporaryVimError):
            await one.list_vms()
        with pytest.raises(VimDiskInUse):
            await two.ensure_vm(spec=spec)
        # The power controller still answers (out of band) and powers the hung host off.
        agent = create_fence_agent(cluster.fence_config("CSP-1"))
        try:
            assert (await agent.status(host="CSP-1")).power is HostPower.ON
            proof = await agent.fence(host="CSP-1")
            assert proof.method is FenceMethod.POWER_OFF
        finally:
            await agent.close()
        assert not locked_elsewhere(disk)  # the kernel dropped the dead host's lock
        assert (await two.ensure_vm(spec=spec)).power is PowerState.RUNNING
        assert cluster.exits == []  # a power off we asked for is not an unexpected exit
        # Power back on: CSP-1 comes back with its persisted copy, which cannot start.
        status, body = await _power(cluster, "CSP-1", {"action": "on"})  # type: ignore[misc]
        assert (status, body) == (200, {"host": "CSP-1", "power": "on"})
        stale = await one.get_vm(name=spec.name)
        assert stale.power is not PowerState.RUNNING and "locked" in (stale.reason or "")
        assert (await two.get_vm(name=spec.name)).power is PowerState.RUNNING
    finally:
        await one.close()
        await two.close()


async def test_power_controller_checks_credentials_and_actions(cluster: EmulatorCluster) -> None:
    host = cluster.hosts["CSP-2"]
    assert host.power_password != host.password  # its own credentials
    async with aiohttp.ClientSession() as s:
        async with s.get(host.power_url + "/power") as resp:
            assert resp.status == 401
        bad = _basic(host.user, host.password)  # the CSP API's: not the power controller's
        async with s.get(host.power_url + "/power", headers=bad) as resp:
            assert resp.status == 401
    assert await _power(cluster, "CSP-2", {"action": "explode"}) == (
        400,
        {"error": 'expected {"action": one of on, off, cycle}'},
    )
    pid = cluster.pid("CSP-2")
    assert await _power(cluster, "CSP-2", {"action": "cycle"}) == (
        200,
        {"host": "CSP-2", "power": "on"},
    )
    assert cluster.pid("CSP-2") not in (None, pid)


async def test_cluster_commands_and_an_unexpected_exit(cluster: EmulatorCluster) -> None:
    connector = CspConnector(config=cluster.config("CSP-2", **FAST))
    try:
        await connector.ensure_vm(spec=sample_spec("vm-kept"))
        assert [ln.split()[:3] for ln in cluster.command("status")] == [
            ["STATUS", "CSP-1", "on"],
            ["STATUS", "CSP-2", "on"],
        ]
        assert cluster.command("partition CSP-2") == ["OK partition CSP-2 paused"]
        with pytest.raises(TemporaryVimError):
            await connector.list_vms()
        assert cluster.command("resume CSP-2") == ["OK resume CSP-2 on"]
        assert [vm.name for vm in await connector.list_vms()] == ["vm-kept"]
        assert cluster.command("bogus CSP-2")[0].startswith("ERROR unknown command")
        assert cluster.command("kill CSP-9")[0].startswith("ERROR no host 'CSP-9'")
        # Killed from outside (as a person would, with kill -9): reported, then restarted.
        pid = cluster.pid("CSP-2")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert cluster.wait_exit_report("CSP-2") == (
            "EXITED CSP-2 rc=-9 (restart CSP-2 to start it again)"
        )
        assert cluster.command("status")[1].split()[:3] == ["STATUS", "CSP-2", "off"]
        assert cluster.command("restart CSP-2") == ["OK restart CSP-2 on"]
        await connector.close()
        vm = await connector.get_vm(name="vm-kept")  # its persisted state, on the same port
        assert vm.power is PowerState.RUNNING
        assert cluster.command("stop CSP-2") == ["OK stop CSP-2 off"]
        assert cluster.command("start CSP-2") == ["OK start CSP-2 on"]
    finally:
        await connector.close()


async def test_port_ids_are_kept_when_the_vm_moves_to_another_host(
    cluster: EmulatorCluster,
) -> None:
    one = CspConnector(config=cluster.config("CSP-1", **FAST))
    two = CspConnector(config=cluster.config("CSP-2", **FAST))
    try:
        first = await one.ensure_vm(spec=sample_spec("vm-moving", storage=Storage.GLUSTER))
        ports = {n.nicid: n.port_id for n in first.interfaces}
        macs = [n.mac_address for n in first.interfaces]
        await one.power_off(name="vm-moving")
        await one.delete_vm(name="vm-moving", keep_disk=True)
        spec = sample_spec("vm-moving", storage=Storage.GLUSTER).with_port_ids(ports)
        moved = await two.ensure_vm(spec=replace_macs(spec, macs))
        assert {n.nicid: n.port_id for n in moved.interfaces} == ports
        assert [n.mac_address for n in moved.interfaces] == macs
        assert moved.host == "CSP-2" and moved.power is PowerState.RUNNING
        # The port is the moved VM's: another VM cannot take it on that host.
        clash = sample_spec("vm-other").with_port_ids({0: ports[0]})
        with pytest.raises(VimConflict):
            await two.ensure_vm(spec=clash)
    finally:
        await one.close()
        await two.close()


def replace_macs(spec: VmSpec, macs: list[str | None]) -> VmSpec:
    nics = tuple(replace(n, mac_address=m) for n, m in zip(spec.interfaces, macs, strict=True))
    return replace(spec, interfaces=nics)


async def test_a_host_short_of_memory_answers_409_resource_denied(tmp_path: Path) -> None:
    with EmulatorHost(name="CSP-S", root=tmp_path, extra_args=["--ram-mb", "1024"]) as host:
        status, _, body = await host.request(
            "POST",
            "/api/running/services",
            body={
                "service": {
                    "name": "big",
                    "numcpu": 1,
                    "memory": 2048,
                    "disk_size": 1,
                    "iso_name": "i.qcow2",
                }
            },
        )
        error = body["errors"]["error"][0]
        assert status == 409
        assert (error["error-tag"], error["error-app-tag"]) == ("resource-denied", "memory")
        assert "not enough memory" in error["error-message"]
        connector = CspConnector(config=host.config(**FAST))
        try:
            with pytest.raises(VimCapacityError) as caught:
                await connector.ensure_vm(spec=sample_spec("big2", memory_mb=2048))
            assert caught.value.resource == "memory"
            assert "in use" not in str(caught.value)
            assert "big2" not in [vm.name for vm in await connector.list_vms()]
        finally:
            await connector.close()


async def test_cluster_copy_rate_makes_a_copy_observable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="esc_orch.vim.csp")
    with EmulatorCluster(tmp_path, hosts=1, extra_args=["--copy-rate-kbps", "256"]) as c:
        connector = CspConnector(config=c.config("CSP-1", **FAST))
        try:
            await connector.ensure_vm(spec=sample_spec("vm-copied"))
            await connector.power_off(name="vm-copied")
            copy = asyncio.ensure_future(
                connector.copy_disk(
                    name="vm-copied", from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER
                )
            )
            seen = []
            while not copy.done():
                state = await connector.get_vm(name="vm-copied")
                if state.disk_copy is not None:
                    seen.append(state.disk_copy.bytes_done)
                await asyncio.sleep(0.1)
            assert (await copy).storage is Storage.GLUSTER
            assert len(seen) >= 2 and seen == sorted(seen)
            lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
            assert "CSP-1: copying the disk of vm-copied from local to gluster" in lines
            copied = [ln for ln in lines if "bytes copied" in ln]
            assert 2 <= len(copied) <= 11 and copied[-1].endswith("(100 %)")
            assert lines[-1] == "CSP-1: disk of vm-copied now on gluster"
        finally:
            await connector.close()
