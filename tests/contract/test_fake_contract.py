"""The contract suite against the in-memory fake (its executable specification)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esc_orch.testing.vim_contract import ConnectorHarness, VimConnectorContract, sample_spec
from esc_orch.vim import (
    Capability,
    Connector,
    ConnectorConfig,
    Credentials,
    Storage,
    TemporaryVimError,
    VmSpec,
)
from esc_orch.vim.fake import FakeClock, FakeCluster, FakeConnector, FakeHost


class FakeHarness(ConnectorHarness):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = FakeCluster()
        self.host = FakeHost(name="CSP-1", cluster=self.cluster)
        self.clock = FakeClock()

    def _make(self, **props: str) -> FakeConnector:
        password = props.pop("password", "pw")
        config = ConnectorConfig(
            id="fake-1",
            type="FAKE",
            properties={"cluster_name": "Cluster_Test", "expected_password": "pw", **props},
            credentials=Credentials(user="admin", password=password),
        )
        return FakeConnector(config=config, host=self.host, clock=self.clock)

    async def connector(self) -> Connector:
        return self._make()

    async def connector_with_bad_credentials(self) -> Connector | None:
        return self._make(password="wrong")

    async def connector_to_failing_vim(self) -> Connector | None:
        down = FakeHost(name="CSP-down", cluster=self.cluster, down=True)
        config = ConnectorConfig(id="down", type="FAKE")
        return FakeConnector(config=config, host=down, clock=self.clock)

    async def connector_without(self, capability: Capability) -> Connector | None:
        keep = ",".join(c.value for c in Capability if c is not capability)
        return self._make(capabilities=keep)

    async def break_next_start(self, *, name: str) -> VmSpec | None:
        self.host.fail_next("create_start", TemporaryVimError("boot failed"))
        return sample_spec(name)

    async def lock_disk_elsewhere(self, *, name: str) -> VmSpec | None:
        self.cluster.gluster_disks.add(name)
        self.cluster.gluster_holder[name] = "CSP-other"
        return sample_spec(name, storage=Storage.GLUSTER)

    copy_poll_interval = 0.0

    async def slow_copy_connector(self) -> Connector | None:
        self.host.copy_step = 1.0  # on the fake clock: quarters a second apart, no real wait
        return self._make()


class TestFakeConnectorContract(VimConnectorContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ConnectorHarness]:
        h = FakeHarness()
        yield h
        await h.aclose()
