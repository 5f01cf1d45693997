"""An in-memory VIM: the executable specification of the connector contract.

Its docstrings say what every connector must do; the contract suite
(:mod:`esc_orch.testing.vim_contract`) passes against it. Orchestrator tests use it to play hosts
going down, slow answers and failures on demand, with a :class:`FakeClock` so nothing sleeps.

Several :class:`FakeConnector` objects on one :class:`FakeCluster` share its Gluster volume: a
disk there can run on one host at a time, as with the OFD locks of real hypervisors.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from esc_orch.vim.errors import (
    PermanentVimError,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import ProgressCallback, require
from esc_orch.vim.types import (
    Capability,
    ConnectorConfig,
    DiskCopyProgress,
    HostInfo,
    NicState,
    PowerState,
    Storage,
    VmChange,
    VmSpec,
    VmState,
)
from esc_orch.vim.watch import poll_changes

ALL_CAPABILITIES = frozenset(
    {
        Capability.POWER,
        Capability.REBOOT,
        Capability.DISK_COPY,
        Capability.SHARED_STORAGE,
        Capability.PORT_IDS,
    }
)


FAKE_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock whose ``sleep`` advances time at once; ``sleeps`` records every request."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def utc(self) -> datetime:
        """The same time as a UTC datetime (a reactor's clock in tests): 2026-01-01 + now."""
        return FAKE_EPOCH + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@dataclass
class _Vm:
    spec: VmSpec
    power: PowerState
    storage: Storage
    vim_id: str
    ports: dict[int, str] = field(default_factory=dict)  # nicid -> port id
    reason: str | None = None
    copy: DiskCopyProgress | None = None


@dataclass
class FakeCluster:
    """Shared storage of fake hosts: ``gluster_holder`` maps a disk to the host running it."""

    name: str = "Cluster_Test"
    gluster_disks: set[str] = field(default_factory=set)
    gluster_holder: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeHost:
    """One fake hypervisor and its fault switches.

    * ``down``: every call raises :class:`TemporaryVimError` (host powered off / partitioned).
    * ``latency``: seconds each call waits on the clock before acting.
    * ``copy_step``: seconds each quarter of a disk copy takes on the clock; when > 0 the copy
      yields to the event loop between quarters, so its progress shows in ``get_vm``.
    * :meth:`fail_next`: the next ``times`` calls of an operation raise ``error``. Operation
      names are the connector's method names, plus ``"create_start"``: the VM was accepted by
      the VIM and fails to start (the connector must then remove it).
    """

    name: str
    cluster: FakeCluster = field(default_factory=FakeCluster)
    ram_total_mb: int = 65536
    cpus_total: int = 32
    down: bool = False
    latency: float = 0.0
    copy_step: float = 0.0
    vms: dict[str, _Vm] = field(default_factory=dict)
    local_disks: set[str] = field(default_factory=set)
    faults: dict[str, list[VimError]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def fail_next(self, operation: str, error: VimError, *, times: int = 1) -> None:
        self.faults.setdefault(operation, []).extend([error] * times)

    def _maybe_fail(self, operation: str) -> None:
        queued = self.faults.get(operation)
        if queued:
            raise queued.pop(0)


_DEFAULT_HOSTS: dict[str, FakeHost] = {}
_DEFAULT_CLUSTER = FakeCluster()


def default_host(name: str) -> FakeHost:
    """The process-wide fake host of that name (what the entry point's connectors share)."""
    return _DEFAULT_HOSTS.setdefault(name, FakeHost(name=name, cluster=_DEFAULT_CLUSTER))


class FakeConnector:
    """In-memory :class:`~esc_orch.vim.protocol.Connector`.

    Config properties: ``host_name`` (default: the connector id) picks the fake host,
    ``expected_password`` makes other passwords fail with :class:`VimAuthError`,
    ``capabilities`` (comma-separated values of :class:`Capability`) restricts what it declares;
    without ``cluster_name`` it has no shared storage (and cannot copy to it).
    """

    def __init__(
        self,
        *,
        config: ConnectorConfig,
        host: FakeHost | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self._config = config
        self.host = host or default_host(config.prop("host_name") or config.id)
        self.clock = clock or FakeClock()
        caps_prop = config.prop("capabilities")
        caps = (
            frozenset(Capability(c.strip()) for c in caps_prop.split(",") if c.strip())
            if caps_prop is not None
            else ALL_CAPABILITIES
        )
        if config.prop("cluster_name") is None:
            caps = caps - {Capability.SHARED_STORAGE}
        self._capabilities = caps
        self._closed = False

    @property
    def config(self) -> ConnectorConfig:
        return self._config

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    async def _enter(self, operation: str) -> None:
        """Every call: closed check, latency, credentials, host down, injected faults."""
        if self._closed:
            raise PermanentVimError("connector is closed")
        self.host.calls.append(operation)
        if self.host.latency:
            await self.clock.sleep(self.host.latency)
        expected = self._config.prop("expected_password")
        creds = self._config.credentials
        if expected is not None and (creds is None or creds.password != expected):
            raise VimAuthError(f"authentication failed on {self.host.name}")
        if self.host.down:
            raise TemporaryVimError(f"host {self.host.name} unreachable", retry_after=5.0)
        self.host._maybe_fail(operation)

    def _state(self, vm: _Vm) -> VmState:
        spec = vm.spec
        return VmState(
            name=spec.name,
            power=vm.power,
            host=self.host.name,
            storage=vm.storage,
            vim_id=vm.vim_id,
            vcpus=spec.vcpus,
            memory_mb=spec.memory_mb,
            disk_mb=spec.disk_mb,
            image=spec.image,
            interfaces=tuple(
                NicState(
                    nicid=n.nicid,
                    network=n.network,
                    port_id=vm.ports.get(n.nicid, f"{vm.vim_id}-{n.nicid}"),
                    mac_address=n.mac_address or f"52:54:00:00:{n.nicid:02x}:01",
                    ip_address=n.ip_address,
                    netmask=n.netmask,
                    type=n.type,
                )
                for n in spec.interfaces
            ),
            reason=vm.reason,
            disk_copy=vm.copy,
        )

    def _get(self, name: str) -> _Vm:
        try:
            return self.host.vms[name]
        except KeyError:
            raise VimNotFound(name) from None

    def _start(self, vm: _Vm) -> None:
        """Check capacity (running VMs count), then take the disk: a Gluster disk runs on one
        host at a time."""
        running = [
            v.spec for v in self.host.vms.values() if v.power is PowerState.RUNNING and v is not vm
        ]
        free_mb = self.host.ram_total_mb - sum(s.memory_mb for s in running)
        if vm.spec.memory_mb > free_mb:
            raise VimCapacityError(
                f"not enough memory on {self.host.name} for {vm.spec.name!r}: needs "
                f"{vm.spec.memory_mb} MB, {free_mb} MB free",
                resource="memory",
            )
        free_cpus = self.host.cpus_total - sum(s.vcpus for s in running)
        if vm.spec.vcpus > free_cpus:
            raise VimCapacityError(
                f"not enough vCPUs on {self.host.name} for {vm.spec.name!r}: needs "
                f"{vm.spec.vcpus}, {free_cpus} free",
                resource="vcpus",
            )
        if vm.storage is Storage.GLUSTER:
            holder = self.host.cluster.gluster_holder.get(vm.spec.name)
            if holder not in (None, self.host.name):
                raise VimDiskInUse(f"disk of {vm.spec.name!r} is in use on host {holder}")
            self.host.cluster.gluster_holder[vm.spec.name] = self.host.name
        vm.power, vm.reason = PowerState.RUNNING, None

    def _stop(self, vm: _Vm, reason: str | None = None) -> None:
        holders = self.host.cluster.gluster_holder
        if vm.storage is Storage.GLUSTER and holders.get(vm.spec.name) == self.host.name:
            del self.host.cluster.gluster_holder[vm.spec.name]
        vm.power, vm.reason = PowerState.STOPPED, reason

    def _drop_disk(self, name: str, storage: Storage) -> None:
        if storage is Storage.LOCAL:
            self.host.local_disks.discard(name)
        elif name not in self.host.cluster.gluster_holder:
            self.host.cluster.gluster_disks.discard(name)

    async def describe(self) -> HostInfo:
        """Capacity counts running VMs only, as a hypervisor does."""
        await self._enter("describe")
        running = [vm.spec for vm in self.host.vms.values() if vm.power is PowerState.RUNNING]
        storages = (Storage.LOCAL, Storage.GLUSTER) if self._shared else (Storage.LOCAL,)
        return HostInfo(
            name=self.host.name,
            ip_address="127.0.0.1",
            ram_total_mb=self.host.ram_total_mb,
            ram_used_mb=sum(s.memory_mb for s in running),
            cpus_total=self.host.cpus_total,
            cpus_used=sum(s.vcpus for s in running),
            num_services=len(self.host.vms),
            storages=storages,
            cluster_name=self._config.prop("cluster_name"),
        )

    @property
    def _shared(self) -> bool:
        return Capability.SHARED_STORAGE in self._capabilities

    async def list_vms(self) -> tuple[VmState, ...]:
        await self._enter("list_vms")
        return tuple(self._state(self.host.vms[n]) for n in sorted(self.host.vms))

    async def get_vm(self, *, name: str) -> VmState:
        await self._enter("get_vm")
        return self._state(self._get(name))

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        """Create and start; an existing VM of that name is returned untouched.

        A Gluster disk that already exists (the VM ran on another host of the cluster) is
        reused, never recreated. If the start fails the VM record (and a disk it created) is
        removed before the error is raised.
        """
        if spec.storage is Storage.GLUSTER:
            require(self._capabilities, Capability.SHARED_STORAGE, connector=self._config.id)
        if spec.chooses_port_ids:
            require(self._capabilities, Capability.PORT_IDS, connector=self._config.id)
        await self._enter("ensure_vm")
        existing = self.host.vms.get(spec.name)
        if existing is not None:
            return self._state(existing)
        vim_id = str(uuid.uuid4())
        ports = {n.nicid: n.port_id or f"{vim_id}-{n.nicid}" for n in spec.interfaces}
        for other in self.host.vms.values():
            clash = set(other.ports.values()) & set(ports.values())
            if clash:
                raise VimConflict(
                    f"port id {sorted(clash)[0]} is already used by {other.spec.name!r}"
                )
        vm = _Vm(
            spec=spec, power=PowerState.STOPPED, storage=spec.storage, vim_id=vim_id, ports=ports
        )
        created_disk = False
        if spec.storage is Storage.GLUSTER:
            created_disk = spec.name not in self.host.cluster.gluster_disks
            self.host.cluster.gluster_disks.add(spec.name)
        else:
            created_disk = spec.name not in self.host.local_disks
            self.host.local_disks.add(spec.name)
        self.host.vms[spec.name] = vm
        try:
            self.host._maybe_fail("create_start")
            self._start(vm)
        except VimError:
            del self.host.vms[spec.name]
            if created_disk:
                self._drop_disk(spec.name, spec.storage)
            raise
        return self._state(vm)

    async def delete_vm(self, *, name: str, keep_disk: bool = False) -> None:
        """Stop and forget the VM; its disk goes too unless ``keep_disk``. Missing: no error."""
        await self._enter("delete_vm")
        vm = self.host.vms.pop(name, None)
        if vm is None:
            return
        self._stop(vm)
        if not keep_disk:
            self._drop_disk(name, vm.storage)

    async def power_on(self, *, name: str) -> VmState:
        require(self._capabilities, Capability.POWER, connector=self._config.id)
        await self._enter("power_on")
        vm = self._get(name)
        if vm.power is not PowerState.RUNNING:
            self._start(vm)
        return self._state(vm)

    async def power_off(self, *, name: str) -> VmState:
        require(self._capabilities, Capability.POWER, connector=self._config.id)
        await self._enter("power_off")
        vm = self._get(name)
        if vm.power is PowerState.RUNNING:
            self._stop(vm)
        return self._state(vm)

    async def reboot(self, *, name: str) -> VmState:
        """A stopped VM cannot be rebooted (:class:`VimConflict`); a running one stays running."""
        require(self._capabilities, Capability.REBOOT, connector=self._config.id)
        await self._enter("reboot")
        vm = self._get(name)
        if vm.power is not PowerState.RUNNING:
            raise VimConflict(f"{name!r} is not running")
        return self._state(vm)

    async def copy_disk(
        self,
        *,
        name: str,
        from_storage: Storage,
        to_storage: Storage,
        progress: ProgressCallback | None = None,
    ) -> VmState:
        """Move a stopped VM's disk; progress goes 0 → total in four steps (each ``copy_step``
        seconds on the clock), shown on the VM's observation meanwhile."""
        require(self._capabilities, Capability.DISK_COPY, connector=self._config.id)
        if Storage.GLUSTER in (from_storage, to_storage):
            require(self._capabilities, Capability.SHARED_STORAGE, connector=self._config.id)
        await self._enter("copy_disk")
        vm = self._get(name)
        if vm.storage is to_storage:
            return self._state(vm)
        if vm.storage is not from_storage:
            raise PermanentVimError(f"disk of {name!r} is on {vm.storage}, not {from_storage}")
        if vm.power is PowerState.RUNNING:
            raise VimConflict(f"{name!r} is running: stop it before copying its disk")
        if vm.copy is not None:
            raise VimConflict(f"the disk of {name!r} is already being copied")
        total = vm.spec.disk_mb * 1024 * 1024
        try:
            for step in range(5):
                done = DiskCopyProgress(
                    name=name,
                    bytes_done=total * step // 4,
                    bytes_total=total,
                    to_storage=to_storage,
                )
                vm.copy = done if step < 4 else None
                if progress is not None:
                    progress(done)
                if step < 4 and self.host.copy_step > 0:
                    await self.clock.sleep(self.host.copy_step)
                    await asyncio.sleep(0)  # let observers see the copy in progress
        finally:
            vm.copy = None
        self._drop_disk(name, from_storage)
        if to_storage is Storage.GLUSTER:
            self.host.cluster.gluster_disks.add(name)
        else:
            self.host.local_disks.add(name)
        self.host.vms[name] = replace(
            vm, storage=to_storage, spec=replace(vm.spec, storage=to_storage)
        )
        return self._state(self.host.vms[name])

    def watch(self, *, interval: float) -> AsyncIterator[VmChange]:
        return poll_changes(list_vms=self.list_vms, interval=interval, sleep=self.clock.sleep)

    async def close(self) -> None:
        self._closed = True

    # Test helpers: what the emulator does with real process states.
    def crash_host(self) -> None:
        """The host loses power: its VMs stop and release their shared disks; API down."""
        for vm in self.host.vms.values():
            if vm.power is PowerState.RUNNING:
                self._stop(vm, reason="host powered off")
        self.host.down = True
