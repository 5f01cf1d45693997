"""The fence agent conformance suite: the rules of :mod:`esc_orch.fence.protocol` as tests.

Use it from any agent's test suite::

    from esc_orch.testing.fence_contract import FenceAgentContract, FenceHarness

    class MyHarness(FenceHarness):
        host = "node-1"
        async def agent(self) -> FenceAgent: ...
        async def host_is_running(self) -> bool: ...   # checked without the agent
        async def power_on(self) -> None: ...          # put the host back after a test

    class TestMyAgent(FenceAgentContract):
        @pytest.fixture
        async def harness(self):
            h = MyHarness()
            yield h
            await h.aclose()

A hook returning ``None`` skips its case, so a report shows what was not checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from esc_orch.fence.errors import FenceError, FenceFailureKind
from esc_orch.fence.protocol import FenceAgent
from esc_orch.fence.types import FenceMethod, HostPower


class FenceHarness:
    """How the suite gets agents and checks the host independently of them."""

    #: The host the agent's controller belongs to.
    host: str = "host-1"
    #: Another host name (asking the agent to fence it must do nothing).
    other_host: str = "host-2"

    def __init__(self) -> None:
        self._opened: list[FenceAgent] = []

    def track(self, agent: FenceAgent) -> FenceAgent:
        self._opened.append(agent)
        return agent

    async def agent(self) -> FenceAgent:
        raise NotImplementedError

    async def agent_with_bad_credentials(self) -> FenceAgent | None:
        return None

    async def agent_to_unreachable_controller(self) -> FenceAgent | None:
        return None

    async def host_is_running(self) -> bool:
        """Whether the host runs, seen without the agent (its process, its API)."""
        raise NotImplementedError

    async def power_on(self) -> None:
        """Bring the host back (fencing never does)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        for agent in self._opened:
            await agent.close()
        self._opened.clear()


class FenceAgentContract:
    """Subclass as ``Test...`` and provide an async ``harness`` fixture."""

    @pytest.fixture
    async def fence(self, harness: FenceHarness) -> FenceAgent:
        await harness.power_on()
        return harness.track(await harness.agent())

    async def test_status_of_a_running_host_is_on(
        self, fence: FenceAgent, harness: FenceHarness
    ) -> None:
        status = await fence.status(host=harness.host)
        assert (status.host, status.power) == (harness.host, HostPower.ON)
        assert await harness.host_is_running()

    async def test_fence_powers_off_and_proves_it(
        self, fence: FenceAgent, harness: FenceHarness
    ) -> None:
        before = datetime.now(UTC)
        proof = await fence.fence(host=harness.host)
        assert proof.host == harness.host and proof.agent_id == fence.config.id
        assert proof.method is FenceMethod.POWER_OFF
        assert before - timedelta(seconds=1) <= proof.at <= datetime.now(UTC)
        assert not await harness.host_is_running()  # a fact, not the agent's word
        assert (await fence.status(host=harness.host)).power is HostPower.OFF

    async def test_fencing_a_host_already_off_is_a_proof_too(
        self, fence: FenceAgent, harness: FenceHarness
    ) -> None:
        await fence.fence(host=harness.host)
        again = await fence.fence(host=harness.host)
        assert again.method is FenceMethod.ALREADY_OFF and again.host == harness.host
        assert not await harness.host_is_running()

    async def test_fence_never_powers_a_host_on(
        self, fence: FenceAgent, harness: FenceHarness
    ) -> None:
        await fence.fence(host=harness.host)
        await fence.status(host=harness.host)
        await fence.fence(host=harness.host)
        assert not await harness.host_is_running()

    async def test_another_hosts_name_does_nothing(
        self, fence: FenceAgent, harness: FenceHarness
    ) -> None:
        with pytest.raises(FenceError) as caught:
            await fence.fence(host=harness.other_host)
        failure = caught.value.failure
        assert failure.kind is FenceFailureKind.WRONG_HOST and not failure.retryable
        assert failure.host == harness.other_host and failure.agent_id == fence.config.id
        with pytest.raises(FenceError) as asked:
            await fence.status(host=harness.other_host)
        assert asked.value.failure.kind is FenceFailureKind.WRONG_HOST
        assert await harness.host_is_running()

    async def test_bad_credentials_are_an_auth_failure(self, harness: FenceHarness) -> None:
        agent = await harness.agent_with_bad_credentials()
        if agent is None:
            pytest.skip("harness has no bad-credentials agent")
        harness.track(agent)
        await harness.power_on()
        for call in (agent.fence, agent.status):
            with pytest.raises(FenceError) as caught:
                await call(host=harness.host)
            assert caught.value.failure.kind is FenceFailureKind.AUTH
        assert await harness.host_is_running()

    async def test_unreachable_controller_is_retryable_and_no_proof(
        self, harness: FenceHarness
    ) -> None:
        agent = await harness.agent_to_unreachable_controller()
        if agent is None:
            pytest.skip("harness has no unreachable controller")
        harness.track(agent)
        with pytest.raises(FenceError) as caught:
            await agent.fence(host=harness.host)
        assert caught.value.failure.kind is FenceFailureKind.UNREACHABLE
        assert caught.value.failure.retryable
