"""The contract suite against the CSP connector talking to real emulator processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from esc_orch.csp_sim.disks import DiskLock, create_sparse
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.vim_contract import ConnectorHarness, VimConnectorContract, sample_spec
from esc_orch.vim import Capability, Connector, Storage, VmSpec
from esc_orch.vim.csp import CspConnector

pytestmark = pytest.mark.functional

FAST = {"retries": "2", "backoff": "0.01", "timeout": "5", "poll_interval": "0.02"}


@pytest.fixture(scope="module")
def cluster_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csp-contract")


@pytest.fixture(scope="module")
def csp_host(cluster_root: Path) -> Iterator[EmulatorHost]:
    with EmulatorHost(name="CSP-1", root=cluster_root) as host:
        yield host


@pytest.fixture(scope="module")
def slow_copy_host(cluster_root: Path) -> Iterator[EmulatorHost]:
    """Copies 256 KiB of data a second: the sample disk's 320 KiB take about 1.3 s."""
    with EmulatorHost(
        name="CSP-8", root=cluster_root, extra_args=["--copy-rate-kbps", "256"]
    ) as host:
        yield host


@pytest.fixture(scope="module")
def flaky_host(cluster_root: Path) -> Iterator[EmulatorHost]:
    with EmulatorHost(name="CSP-9", root=cluster_root, extra_args=["--error-rate", "1"]) as host:
        yield host


class CspHarness(ConnectorHarness):
    def __init__(self, host: EmulatorHost, flaky: EmulatorHost, slow: EmulatorHost) -> None:
        super().__init__()
        self.host, self.flaky, self.slow = host, flaky, slow
        self.locks: list[DiskLock] = []

    async def connector(self) -> Connector:
        return CspConnector(config=self.host.config(**FAST))

    async def connector_with_bad_credentials(self) -> Connector | None:
        return CspConnector(config=self.host.config(password="not-the-password", **FAST))

    async def connector_to_failing_vim(self) -> Connector | None:
        return CspConnector(config=self.flaky.config(**FAST))

    async def connector_without(self, capability: Capability) -> Connector | None:
        if capability in (Capability.DISK_COPY, Capability.SHARED_STORAGE):
            return CspConnector(config=self.host.config(cluster_name="", **FAST))
        if capability is Capability.PORT_IDS:
            return CspConnector(config=self.host.config(port_ids="false", **FAST))
        return None

    async def slow_copy_connector(self) -> Connector | None:
        return CspConnector(config=self.slow.config(**FAST))

    async def lock_disk_elsewhere(self, *, name: str) -> VmSpec | None:
        return await self.break_next_start(name=name)

    async def break_next_start(self, *, name: str) -> VmSpec | None:
        """Another "host" (this test process) holds the OFD lock of the VM's Gluster disk."""
        disk = self.host.gluster_dir / f"{name}.qcow2"
        disk.parent.mkdir(parents=True, exist_ok=True)
        create_sparse(disk, size=1 << 30, seed=b"other host")
        lock = DiskLock(disk)
        lock.acquire()
        self.locks.append(lock)
        return sample_spec(name, storage=Storage.GLUSTER)

    async def aclose(self) -> None:
        await super().aclose()
        for lock in self.locks:
            assert lock.path.exists(), "a disk in use elsewhere must never be deleted"
            lock.release()
            lock.path.unlink()


class TestCspConnectorContract(VimConnectorContract):
    @pytest.fixture
    async def harness(
        self, csp_host: EmulatorHost, flaky_host: EmulatorHost, slow_copy_host: EmulatorHost
    ) -> AsyncIterator[ConnectorHarness]:
        h = CspHarness(csp_host, flaky_host, slow_copy_host)
        yield h
        await h.aclose()
