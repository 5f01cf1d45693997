"""An in-memory fence agent and power board, for unit tests of whatever fences hosts.

:class:`FakePowerBoard` holds the power of named hosts; ``on_power_off`` lets a test make the
host's fake VIM lose power at the same moment (e.g. ``FakeConnector.crash_host``). Faults:
``unreachable``, ``stuck_on`` (power off is acknowledged but the host stays on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from esc_orch.fence.errors import FenceError, FenceFailure, FenceFailureKind
from esc_orch.fence.types import (
    FenceAgentConfig,
    FenceMethod,
    FenceProof,
    FenceStatus,
    HostPower,
)


@dataclass
class FakePowerBoard:
    power: dict[str, HostPower] = field(default_factory=dict)
    on_power_off: dict[str, Callable[[], None]] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)
    stuck_on: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, host)

    def power_off(self, host: str) -> None:
        if host in self.stuck_on:
            return
        if self.power.get(host) is not HostPower.OFF:
            self.power[host] = HostPower.OFF
            hook = self.on_power_off.get(host)
            if hook is not None:
                hook()


_DEFAULT_BOARD = FakePowerBoard()


class FakeFenceAgent:
    """Properties: ``host_name`` (the one host this agent's "controller" belongs to),
    ``expected_password`` (other passwords fail with ``auth``)."""

    def __init__(
        self,
        *,
        config: FenceAgentConfig,
        board: FakePowerBoard | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._config = config
        self.board = board or _DEFAULT_BOARD
        self._now = now or (lambda: datetime.now(UTC))
        self.host_name = config.prop("host_name") or config.id
        self.board.power.setdefault(self.host_name, HostPower.ON)

    @property
    def config(self) -> FenceAgentConfig:
        return self._config

    def _enter(self, operation: str, host: str) -> None:
        self.board.calls.append((operation, host))

        def fail(kind: FenceFailureKind, detail: str) -> FenceError:
            return FenceError(
                FenceFailure(kind=kind, agent_id=self._config.id, host=host, detail=detail)
            )

        expected = self._config.prop("expected_password")
        creds = self._config.credentials
        if expected is not None and (creds is None or creds.password != expected):
            raise fail(FenceFailureKind.AUTH, "credentials rejected")
        if self.host_name in self.board.unreachable:
            raise fail(FenceFailureKind.UNREACHABLE, "controller does not answer")
        if host != self.host_name:
            raise fail(
                FenceFailureKind.WRONG_HOST,
                f"controller belongs to {self.host_name!r}: nothing was done",
            )

    async def status(self, *, host: str) -> FenceStatus:
        self._enter("status", host)
        return FenceStatus(host=host, power=self.board.power.get(host, HostPower.UNKNOWN))

    async def fence(self, *, host: str) -> FenceProof:
        self._enter("fence", host)
        method = FenceMethod.ALREADY_OFF
        if self.board.power.get(host) is not HostPower.OFF:
            method = FenceMethod.POWER_OFF
            self.board.power_off(host)
        if self.board.power.get(host) is not HostPower.OFF:
            raise FenceError(
                FenceFailure(
                    kind=FenceFailureKind.NOT_CONFIRMED,
                    agent_id=self._config.id,
                    host=host,
                    detail="power off acknowledged but the host is still on",
                )
            )
        return FenceProof(
            host=host,
            agent_id=self._config.id,
            agent_type=self._config.type,
            method=method,
            at=self._now(),
        )

    async def close(self) -> None:
        return None
