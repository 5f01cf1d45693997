"""The fence agent contract against the fake agent and against the emulator's power controller
(a real ``esc-csp-sim cluster`` process, over HTTP)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from esc_orch.fence import FenceAgent, FenceAgentConfig, HostPower, create_fence_agent
from esc_orch.fence.csp_sim_power import CspSimPowerFence
from esc_orch.fence.fake import FakeFenceAgent, FakePowerBoard
from esc_orch.testing.emulator import EmulatorCluster
from esc_orch.testing.fence_contract import FenceAgentContract, FenceHarness
from esc_orch.vim import Credentials


class FakeHarness(FenceHarness):
    host, other_host = "CSP-1", "CSP-2"

    def __init__(self) -> None:
        super().__init__()
        self.board = FakePowerBoard()

    def _make(self, password: str = "pw") -> FenceAgent:
        config = FenceAgentConfig(
            id="power-CSP-1",
            type="FAKE",
            properties={"host_name": "CSP-1", "expected_password": "pw"},
            credentials=Credentials(user="admin", password=password),
        )
        return FakeFenceAgent(config=config, board=self.board)

    async def agent(self) -> FenceAgent:
        return self._make()

    async def agent_with_bad_credentials(self) -> FenceAgent | None:
        return self._make(password="wrong")

    async def agent_to_unreachable_controller(self) -> FenceAgent | None:
        agent = self._make()
        self.board.unreachable.add("CSP-1")
        return agent

    async def host_is_running(self) -> bool:
        return self.board.power.get("CSP-1") is HostPower.ON

    async def power_on(self) -> None:
        self.board.unreachable.discard("CSP-1")
        self.board.power["CSP-1"] = HostPower.ON


class TestFakeFenceAgentContract(FenceAgentContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[FenceHarness]:
        h = FakeHarness()
        yield h
        await h.aclose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path_factory.mktemp("fence"), hosts=2) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmulatorHarness(FenceHarness):
    host, other_host = "CSP-1", "CSP-2"

    def __init__(self, cluster: EmulatorCluster) -> None:
        super().__init__()
        self.cluster = cluster

    async def agent(self) -> FenceAgent:
        # Found by type through the entry point, as the daemon will.
        return create_fence_agent(self.cluster.fence_config("CSP-1"))

    async def agent_with_bad_credentials(self) -> FenceAgent | None:
        return CspSimPowerFence(config=self.cluster.fence_config("CSP-1", password="nope"))

    async def agent_to_unreachable_controller(self) -> FenceAgent | None:
        url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
        return CspSimPowerFence(config=self.cluster.fence_config("CSP-1", url=url))

    async def host_is_running(self) -> bool:
        """The host's own API port accepts connections (its process is alive)."""
        port = int(self.cluster.hosts["CSP-1"].url.rsplit(":", 1)[1])
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    async def power_on(self) -> None:
        self.cluster.start("CSP-1")


@pytest.mark.functional
class TestEmulatorPowerFenceContract(FenceAgentContract):
    @pytest.fixture
    async def harness(self, cluster: EmulatorCluster) -> AsyncIterator[FenceHarness]:
        h = EmulatorHarness(cluster)
        yield h
        await h.aclose()
