"""The VIM connector conformance suite: the rules of :mod:`esc_orch.vim.protocol` as tests.

Use it from any connector's test suite (ours or a third party's)::

    from esc_orch.testing.vim_contract import ConnectorHarness, VimConnectorContract

    class MyHarness(ConnectorHarness):
        async def connector(self) -> Connector: ...

    class TestMyConnector(VimConnectorContract):
        @pytest.fixture
        async def harness(self):
            h = MyHarness()
            yield h
            await h.aclose()

Cases whose harness hook returns ``None`` (e.g. no way to provoke a failed start) are skipped,
not passed, so a report shows what was not checked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from esc_orch.vim.errors import (
    CapabilityNotSupported,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import Connector
from esc_orch.vim.types import (
    Capability,
    DiskCopyProgress,
    NicSpec,
    PowerState,
    SerialPortSpec,
    Storage,
    VmChange,
    VmChangeKind,
    VmSpec,
)


def sample_spec(
    name: str, *, storage: Storage = Storage.LOCAL, memory_mb: int = 512, port_ids: bool = False
) -> VmSpec:
    """A small VM like the seed's ``Group1`` (two virtio NICs, a console); ``port_ids``: its
    interfaces ask for port ids of their own (unique to the VM's name)."""
    spec = VmSpec(
        name=name,
        vcpus=2,
        memory_mb=memory_mb,
        disk_mb=1024,
        image="csr1000v.qcow2",
        interfaces=(
            NicSpec(nicid=0, network="Eth0-2", ip_address="192.168.23.10", netmask="255.255.255.0"),
            NicSpec(nicid=1, network="Eth0-2", vlan=10, tagged=True),
        ),
        serial_ports=(SerialPortSpec(index=0),),
        storage=storage,
    )
    if port_ids:
        spec = spec.with_port_ids({n.nicid: f"port-{name}-{n.nicid}" for n in spec.interfaces})
    return spec


class ConnectorHarness:
    """How the suite gets connectors and provokes conditions; override what your VIM can do."""

    watch_interval: float = 0.05
    #: How often the suite looks at a VM while its disk is copied (0: at every loop turn).
    copy_poll_interval: float = 0.05

    def __init__(self) -> None:
        self._opened: list[Connector] = []

    def track(self, connector: Connector) -> Connector:
        self._opened.append(connector)
        return connector

    async def connector(self) -> Connector:
        """A working connector (with shared storage if the VIM has it)."""
        raise NotImplementedError

    async def connector_with_bad_credentials(self) -> Connector | None:
        """A connector whose password the VIM rejects, or None if not testable."""
        return None

    async def connector_to_failing_vim(self) -> Connector | None:
        """A connector whose VIM answers 5xx or times out, or None."""
        return None

    async def connector_without(self, capability: Capability) -> Connector | None:
        """A connector configured without ``capability``, or None."""
        return None

    async def break_next_start(self, *, name: str) -> VmSpec | None:
        """Arrange that creating the returned spec is accepted by the VIM and then fails to
        start (e.g. its disk is locked); None if the VIM offers no way to do that."""
        return None

    async def lock_disk_elsewhere(self, *, name: str) -> VmSpec | None:
        """Arrange that another host runs the returned (shared-storage) spec's disk, so
        starting it here is refused as disk-in-use; None if not testable."""
        return None

    async def slow_copy_connector(self) -> Connector | None:
        """A connector whose disk copies take long enough (≥ 0.5 s, or several yields of the
        event loop) to be observed while they run; None if not testable."""
        return None

    async def aclose(self) -> None:
        """Close every tracked connector; subclasses also undo what they arranged."""
        for c in self._opened:
            await c.close()
        self._opened.clear()


def _name() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


async def _next(it: AsyncIterator[VmChange], name: str) -> VmChange:
    async with asyncio.timeout(10.0):
        async for change in it:
            if change.name == name:
                return change
    raise AssertionError("watch ended")


class VimConnectorContract:
    """Subclass as ``Test...`` and provide an async ``harness`` fixture."""

    @pytest.fixture
    async def vim(self, harness: ConnectorHarness) -> AsyncIterator[Connector]:
        connector = harness.track(await harness.connector())
        yield connector
        for vm in await connector.list_vms():
            if vm.name.startswith("contract-"):
                await connector.delete_vm(name=vm.name)

    async def test_describe_reports_the_host(self, vim: Connector) -> None:
        info = await vim.describe()
        assert info.name
        assert 0 <= info.ram_used_mb <= info.ram_total_mb
        assert 0 <= info.cpus_used <= info.cpus_total
        assert Storage.LOCAL in info.storages
        if Capability.SHARED_STORAGE in vim.capabilities:
            assert Storage.GLUSTER in info.storages

    async def test_ensure_creates_a_running_vm(self, vim: Connector) -> None:
        spec = sample_spec(_name())
        state = await vim.ensure_vm(spec=spec)
        assert (state.name, state.power) == (spec.name, PowerState.RUNNING)
        assert (state.vcpus, state.memory_mb, state.image) == (2, 512, spec.image)
        assert state.disk_mb >= spec.disk_mb
        assert state.storage is Storage.LOCAL
        assert [n.nicid for n in state.interfaces] == [0, 1]
        assert state.interfaces[0].ip_address == "192.168.23.10"
        assert all(n.mac_address for n in state.interfaces)
        assert await vim.get_vm(name=spec.name) == state
        assert spec.name in [vm.name for vm in await vim.list_vms()]

    async def test_ensure_twice_gives_one_vm(self, vim: Connector) -> None:
        spec = sample_spec(_name())
        first = await vim.ensure_vm(spec=spec)
        second = await vim.ensure_vm(spec=spec)
        assert first.vim_id == second.vim_id
        assert [vm.name for vm in await vim.list_vms()].count(spec.name) == 1

    async def test_delete_is_idempotent(self, vim: Connector) -> None:
        spec = sample_spec(_name())
        await vim.ensure_vm(spec=spec)
        await vim.delete_vm(name=spec.name)
        await vim.delete_vm(name=spec.name)
        await vim.delete_vm(name=_name())
        with pytest.raises(VimNotFound):
            await vim.get_vm(name=spec.name)
        assert spec.name not in [vm.name for vm in await vim.list_vms()]

    async def test_missing_vm_is_not_found(self, vim: Connector) -> None:
        name = _name()
        with pytest.raises(VimNotFound):
            await vim.get_vm(name=name)
        if Capability.POWER in vim.capabilities:
            with pytest.raises(VimNotFound):
                await vim.power_on(name=name)
            with pytest.raises(VimNotFound):
                await vim.power_off(name=name)
        if Capability.REBOOT in vim.capabilities:
            with pytest.raises(VimNotFound):
                await vim.reboot(name=name)

    async def test_power_cycle(self, vim: Connector) -> None:
        if Capability.POWER not in vim.capabilities:
            pytest.skip("no POWER capability")
        spec = sample_spec(_name())
        await vim.ensure_vm(spec=spec)
        assert (await vim.power_off(name=spec.name)).power is PowerState.STOPPED
        assert (await vim.power_off(name=spec.name)).power is PowerState.STOPPED
        assert (await vim.get_vm(name=spec.name)).power is PowerState.STOPPED
        if Capability.REBOOT in vim.capabilities:
            with pytest.raises(VimConflict):
                await vim.reboot(name=spec.name)
        assert (await vim.power_on(name=spec.name)).power is PowerState.RUNNING
        assert (await vim.power_on(name=spec.name)).power is PowerState.RUNNING
        if Capability.REBOOT in vim.capabilities:
            assert (await vim.reboot(name=spec.name)).power is PowerState.RUNNING

    async def test_failed_create_leaves_no_half_vm(
        self, vim: Connector, harness: ConnectorHarness
    ) -> None:
        spec = await harness.break_next_start(name=_name())
        if spec is None:
            pytest.skip("harness cannot make a start fail")
        with pytest.raises(VimError):
            await vim.ensure_vm(spec=spec)
        assert spec.name not in [vm.name for vm in await vim.list_vms()]
        with pytest.raises(VimNotFound):
            await vim.get_vm(name=spec.name)

    async def test_bad_credentials_raise_auth_error(self, harness: ConnectorHarness) -> None:
        connector = await harness.connector_with_bad_credentials()
        if connector is None:
            pytest.skip("harness has no bad-credentials connector")
        harness.track(connector)
        with pytest.raises(VimAuthError):
            await connector.list_vms()
        with pytest.raises(VimAuthError):
            await connector.ensure_vm(spec=sample_spec(_name()))

    async def test_failing_vim_raises_temporary_error(self, harness: ConnectorHarness) -> None:
        connector = await harness.connector_to_failing_vim()
        if connector is None:
            pytest.skip("harness has no failing VIM")
        harness.track(connector)
        with pytest.raises(TemporaryVimError) as info:
            await connector.list_vms()
        assert info.value.retry_after >= 0
        with pytest.raises(TemporaryVimError):
            await connector.get_vm(name=_name())

    @pytest.mark.parametrize("capability", list(Capability))
    async def test_capability_gating(
        self, harness: ConnectorHarness, vim: Connector, capability: Capability
    ) -> None:
        connector = vim
        if capability in vim.capabilities:
            other = await harness.connector_without(capability)
            if other is None:
                pytest.skip(f"{capability} declared; harness cannot remove it")
            connector = harness.track(other)
            assert capability not in connector.capabilities
        name = _name()
        calls = {
            Capability.POWER: lambda: connector.power_on(name=name),
            Capability.REBOOT: lambda: connector.reboot(name=name),
            Capability.DISK_COPY: lambda: connector.copy_disk(
                name=name, from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER
            ),
            Capability.SHARED_STORAGE: lambda: connector.ensure_vm(
                spec=sample_spec(name, storage=Storage.GLUSTER)
            ),
            Capability.PORT_IDS: lambda: connector.ensure_vm(spec=sample_spec(name, port_ids=True)),
        }
        if capability not in calls:
            pytest.skip(f"{capability} gates no operation")
        with pytest.raises(CapabilityNotSupported):
            await calls[capability]()

    async def test_disk_copy_local_to_gluster(self, vim: Connector) -> None:
        if not {Capability.DISK_COPY, Capability.SHARED_STORAGE} <= vim.capabilities:
            pytest.skip("no DISK_COPY with SHARED_STORAGE")
        spec = sample_spec(_name())
        await vim.ensure_vm(spec=spec)
        with pytest.raises(VimConflict):
            await vim.copy_disk(
                name=spec.name, from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER
            )
        await vim.power_off(name=spec.name)
        seen: list[DiskCopyProgress] = []
        moved = await vim.copy_disk(
            name=spec.name,
            from_storage=Storage.LOCAL,
            to_storage=Storage.GLUSTER,
            progress=seen.append,
        )
        assert moved.storage is Storage.GLUSTER
        assert moved.vim_id and moved.name == spec.name
        assert seen and seen[-1].fraction == 1.0
        assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
        again = await vim.copy_disk(
            name=spec.name, from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER
        )
        assert again.storage is Storage.GLUSTER
        assert (await vim.power_on(name=spec.name)).power is PowerState.RUNNING

    async def test_watch_reports_vms_and_changes(
        self, vim: Connector, harness: ConnectorHarness
    ) -> None:
        spec = sample_spec(_name())
        await vim.ensure_vm(spec=spec)
        changes = vim.watch(interval=harness.watch_interval)
        try:
            first = await _next(changes, spec.name)
            assert first.kind is VmChangeKind.ADDED
            await vim.delete_vm(name=spec.name)
            gone = await _next(changes, spec.name)
            assert gone.kind is VmChangeKind.REMOVED
        finally:
            await changes.aclose()  # type: ignore[attr-defined]

    async def test_port_ids_are_reported_distinct_and_stable(self, vim: Connector) -> None:
        spec = sample_spec(_name())
        state = await vim.ensure_vm(spec=spec)
        ports = [n.port_id for n in state.interfaces]
        assert all(ports) and len(set(ports)) == len(ports)
        assert [n.port_id for n in (await vim.get_vm(name=spec.name)).interfaces] == ports

    async def test_chosen_port_ids_are_kept(self, vim: Connector) -> None:
        if Capability.PORT_IDS not in vim.capabilities:
            pytest.skip("no PORT_IDS capability")
        spec = sample_spec(_name(), port_ids=True)
        wanted = [n.port_id for n in spec.interfaces]
        state = await vim.ensure_vm(spec=spec)
        assert [n.port_id for n in state.interfaces] == wanted
        await vim.delete_vm(name=spec.name)
        again = await vim.ensure_vm(spec=spec)  # what a move does on the next host
        assert [n.port_id for n in again.interfaces] == wanted
        other = sample_spec(_name()).with_port_ids({0: wanted[0]})
        with pytest.raises(VimConflict):
            await vim.ensure_vm(spec=other)  # a port belongs to one interface
        assert other.name not in [vm.name for vm in await vim.list_vms()]

    async def test_lack_of_memory_is_a_capacity_error(self, vim: Connector) -> None:
        info = await vim.describe()
        free = info.ram_total_mb - info.ram_used_mb
        spec = sample_spec(_name(), memory_mb=free + 1024)
        with pytest.raises(VimCapacityError) as caught:
            await vim.ensure_vm(spec=spec)
        assert not isinstance(caught.value, VimConflict)  # never read as "disk in use"
        assert caught.value.resource in (None, "memory")
        assert spec.name not in [vm.name for vm in await vim.list_vms()]

    async def test_disk_in_use_elsewhere_is_its_own_error(
        self, vim: Connector, harness: ConnectorHarness
    ) -> None:
        spec = await harness.lock_disk_elsewhere(name=_name())
        if spec is None:
            pytest.skip("harness cannot lock a disk elsewhere")
        with pytest.raises(VimDiskInUse) as caught:
            await vim.ensure_vm(spec=spec)
        assert not isinstance(caught.value, VimCapacityError)
        assert spec.name not in [vm.name for vm in await vim.list_vms()]

    async def test_disk_copy_progress_is_observed(self, harness: ConnectorHarness) -> None:
        connector = await harness.slow_copy_connector()
        if connector is None:
            pytest.skip("harness has no slow disk copy")
        vim = harness.track(connector)
        if not {Capability.DISK_COPY, Capability.SHARED_STORAGE} <= vim.capabilities:
            pytest.skip("no DISK_COPY with SHARED_STORAGE")
        spec = sample_spec(_name())
        await vim.ensure_vm(spec=spec)
        await vim.power_off(name=spec.name)
        copy = asyncio.ensure_future(
            vim.copy_disk(name=spec.name, from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER)
        )
        seen: list[DiskCopyProgress] = []
        try:
            async with asyncio.timeout(30.0):
                while not copy.done():
                    shown = (await vim.get_vm(name=spec.name)).disk_copy
                    if shown is not None:
                        seen.append(shown)
                    await asyncio.sleep(harness.copy_poll_interval)
            moved = await copy
        finally:
            copy.cancel()
        assert seen, "the copy never showed in the VM's observation"
        assert all(p.name == spec.name and p.to_storage is Storage.GLUSTER for p in seen)
        assert all(0 <= p.bytes_done <= p.bytes_total and p.bytes_total > 0 for p in seen)
        assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
        assert moved.storage is Storage.GLUSTER and moved.disk_copy is None
        assert (await vim.get_vm(name=spec.name)).disk_copy is None
        await vim.delete_vm(name=spec.name)
