"""Faults as process states: two hosts and one Gluster disk, SIGKILL, SIGSTOP, restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import PowerState, Storage, TemporaryVimError, VimConflict
from esc_orch.vim.csp import CspConnector

pytestmark = pytest.mark.functional
FAST = {"retries": "1", "timeout": "3", "poll_interval": "0.02"}


@pytest.fixture
async def pair(hosts: list[EmulatorHost]) -> AsyncIterator[tuple[CspConnector, CspConnector]]:
    a = CspConnector(config=hosts[0].config(**FAST))
    b = CspConnector(config=hosts[1].config(**FAST))
    yield a, b
    await a.close()
    await b.close()


async def test_two_hosts_never_run_one_gluster_disk(
    hosts: list[EmulatorHost], pair: tuple[CspConnector, CspConnector]
) -> None:
    a, b = pair
    spec = sample_spec("vm1", storage=Storage.GLUSTER)
    assert (await a.ensure_vm(spec=spec)).power is PowerState.RUNNING
    with pytest.raises(VimConflict, match="locked"):
        await b.ensure_vm(spec=spec)
    assert await b.list_vms() == ()  # the connector removed the half-created service
    assert (hosts[0].gluster_dir / "vm1.qcow2").exists()  # and never the disk in use
    await a.power_off(name="vm1")
    moved = await b.ensure_vm(spec=spec)
    assert moved.power is PowerState.RUNNING and moved.host == "CSP-2"
    with pytest.raises(VimConflict):
        await a.power_on(name="vm1")
    await a.delete_vm(name="vm1")  # the stale copy goes; the disk in use stays
    assert (hosts[0].gluster_dir / "vm1.qcow2").exists()
    assert (await b.get_vm(name="vm1")).power is PowerState.RUNNING


async def test_sigkill_releases_locks_and_restart_finds_the_disk_taken(
    hosts: list[EmulatorHost], pair: tuple[CspConnector, CspConnector]
) -> None:
    a, b = pair
    spec = sample_spec("vm1", storage=Storage.GLUSTER)
    local = sample_spec("vm2")
    await a.ensure_vm(spec=spec)
    await a.ensure_vm(spec=local)
    hosts[0].kill()  # CSP-1 loses power
    with pytest.raises(TemporaryVimError):
        await a.list_vms()
    assert (await b.ensure_vm(spec=spec)).power is PowerState.RUNNING  # lock was dropped
    hosts[0].start()  # CSP-1 comes back on the same port with its persisted services
    stale = await a.get_vm(name="vm1")
    assert stale.power is PowerState.STOPPED
    assert stale.reason and "locked" in stale.reason
    assert (await a.get_vm(name="vm2")).power is PowerState.RUNNING  # its own disk: restarted
    await a.delete_vm(name="vm1", keep_disk=True)
    assert (await b.get_vm(name="vm1")).power is PowerState.RUNNING


async def test_sigstop_partitions_the_host_but_keeps_its_locks(
    hosts: list[EmulatorHost], pair: tuple[CspConnector, CspConnector]
) -> None:
    a, b = pair
    spec = sample_spec("vm1", storage=Storage.GLUSTER)
    await a.ensure_vm(spec=spec)
    hosts[0].pause()
    try:
        silent = CspConnector(config=hosts[0].config(retries="1", timeout="0.3"))
        try:
            with pytest.raises(TemporaryVimError):
                await silent.list_vms()
        finally:
            await silent.close()
        with pytest.raises(VimConflict):
            await b.ensure_vm(spec=spec)  # the frozen host still holds the disk
    finally:
        hosts[0].resume()
    assert (await a.get_vm(name="vm1")).power is PowerState.RUNNING


async def test_latency_injection_makes_requests_time_out(tmp_path: Path) -> None:
    with EmulatorHost(name="CSP-S", root=tmp_path, extra_args=["--latency-ms", "400"]) as slow:
        connector = CspConnector(config=slow.config(retries="1", timeout="0.1"))
        try:
            with pytest.raises(TemporaryVimError):
                await connector.list_vms()
        finally:
            await connector.close()
        patient = CspConnector(config=slow.config(retries="1", timeout="3"))
        try:
            assert await patient.list_vms() == ()
        finally:
            await patient.close()
