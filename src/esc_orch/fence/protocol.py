"""The contract between the orchestrator and any fence agent (IPMI, Redfish, a PDU, ...).

:mod:`esc_orch.fence.fake` is its executable version and :mod:`esc_orch.testing.fence_contract`
checks any agent against it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from esc_orch.fence.types import FenceAgentConfig, FenceProof, FenceStatus


@runtime_checkable
class FenceAgent(Protocol):
    """One out-of-band power controller (for the emulator and a BMC: one per host).

    Rules every implementation follows:

    * Failures are :class:`~esc_orch.fence.errors.FenceError` only, with a typed
      :class:`~esc_orch.fence.errors.FenceFailure`.
    * ``fence`` returns a :class:`~esc_orch.fence.types.FenceProof` only once the controller
      reports the host powered off, read back after the action; never on a guess.
    * Before any power action the agent checks that its controller belongs to ``host`` (a
      misconfiguration must not power off the wrong machine): otherwise
      :attr:`~esc_orch.fence.errors.FenceFailureKind.WRONG_HOST` and nothing is done.
    * ``fence`` is idempotent: a host already off gives a proof (method ``already-off``).
    * Fencing never powers the host back on; bringing it back is an operator's decision.
    """

    @property
    def config(self) -> FenceAgentConfig: ...

    async def status(self, *, host: str) -> FenceStatus:
        """The host's power as its controller reports it (no action)."""
        ...

    async def fence(self, *, host: str) -> FenceProof:
        """Power ``host`` off and prove it."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
