"""Fault injection of the fake: failures on demand, host down, latency on a fake clock."""

from __future__ import annotations

import pytest

from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import (
    ConnectorConfig,
    PermanentVimError,
    PowerState,
    Storage,
    TemporaryVimError,
    VimConflict,
    VmChangeKind,
)
from esc_orch.vim.fake import FakeClock, FakeCluster, FakeConnector, FakeHost


def _pair() -> tuple[FakeConnector, FakeConnector, FakeClock]:
    cluster, clock = FakeCluster(), FakeClock()
    props = {"cluster_name": "Cluster_Test"}
    a = FakeConnector(
        config=ConnectorConfig(id="CSP-1", type="FAKE", properties=props),
        host=FakeHost(name="CSP-1", cluster=cluster),
        clock=clock,
    )
    b = FakeConnector(
        config=ConnectorConfig(id="CSP-2", type="FAKE", properties=props),
        host=FakeHost(name="CSP-2", cluster=cluster),
        clock=clock,
    )
    return a, b, clock


async def test_fail_next_n_calls_then_recover() -> None:
    a, _, _ = _pair()
    a.host.fail_next("list_vms", TemporaryVimError("503"), times=2)
    for _ in range(2):
        with pytest.raises(TemporaryVimError):
            await a.list_vms()
    assert await a.list_vms() == ()


async def test_latency_advances_the_fake_clock_only() -> None:
    a, _, clock = _pair()
    a.host.latency = 2.5
    await a.describe()
    await a.list_vms()
    assert clock.now == 5.0 and clock.sleeps == [2.5, 2.5]


async def test_gluster_disk_runs_on_one_host_and_moves_when_the_first_dies() -> None:
    a, b, _ = _pair()
    spec = sample_spec("vm1", storage=Storage.GLUSTER)
    await a.ensure_vm(spec=spec)
    with pytest.raises(VimConflict):
        await b.ensure_vm(spec=spec)
    assert await b.list_vms() == ()  # the failed create left nothing
    a.crash_host()
    with pytest.raises(TemporaryVimError):
        await a.get_vm(name="vm1")
    moved = await b.ensure_vm(spec=spec)
    assert moved.power is PowerState.RUNNING and moved.host == "CSP-2"
    a.host.down = False  # the host comes back with its stale copy
    stale = await a.get_vm(name="vm1")
    assert stale.power is PowerState.STOPPED and stale.reason == "host powered off"
    with pytest.raises(VimConflict):
        await a.power_on(name="vm1")
    await a.delete_vm(name="vm1", keep_disk=True)
    assert "vm1" in a.host.cluster.gluster_disks


async def test_copy_to_the_current_storage_is_a_no_op_even_when_running() -> None:
    a, _, _ = _pair()
    await a.ensure_vm(spec=sample_spec("vm1"))
    vm = await a.copy_disk(name="vm1", from_storage=Storage.GLUSTER, to_storage=Storage.LOCAL)
    assert vm.storage is Storage.LOCAL and vm.power is PowerState.RUNNING


async def test_watch_polls_on_the_injected_clock() -> None:
    a, _, clock = _pair()
    await a.ensure_vm(spec=sample_spec("vm1"))
    changes = a.watch(interval=10)
    first = await anext(changes)
    assert (first.kind, first.name) == (VmChangeKind.ADDED, "vm1")
    await a.power_off(name="vm1")
    second = await anext(changes)
    assert second.kind is VmChangeKind.CHANGED
    assert second.after is not None and second.after.power is PowerState.STOPPED
    assert clock.sleeps == [10]
    await changes.aclose()  # type: ignore[attr-defined]


async def test_closed_connector_refuses() -> None:
    a, _, _ = _pair()
    await a.close()
    with pytest.raises(PermanentVimError):
        await a.list_vms()
