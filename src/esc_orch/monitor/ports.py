"""The monitor's ports: what to watch comes in, what it learns goes out, time is injected.

The daemon implements them (from the deployment records, and by handing recovery requests to
the recovery policy and the reactor); tests implement them with lists. Nothing here knows the
store, the reactor or NETCONF.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from esc_orch.monitor.decision import KpiState, RecoveryRequest, VmMonitorState
from esc_orch.monitor.rule_runner import RuleOutcome
from esc_orch.monitor.types import VimView, VmWatch


class Clock(Protocol):
    def now(self) -> float:
        """Seconds; wall-clock epoch in the daemon (snapshots outlive the process)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class WatchPort(Protocol):
    def watches(self) -> Sequence[VmWatch]:
        """Every VM to watch now (a VM being updated or moved comes with ``paused=True``).

        Called on every turn of the loop (at least once a second): return a cached sequence,
        rebuilt only when a deployment record changes.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiStatus:
    event_name: str
    condition: bool | None
    last_value: float | None
    consecutive: int
    last_poll_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class VmStatus:
    """One VM's monitoring opdata: on/off, each KPI's last value and count, the VIM's view."""

    vm_name: str
    monitoring: bool
    alive: bool
    vim: VimView | None
    kpis: tuple[KpiStatus, ...]

    @classmethod
    def of(cls, watch: VmWatch, state: VmMonitorState) -> VmStatus:
        def kpi(name: str, st: KpiState) -> KpiStatus:
            return KpiStatus(
                event_name=name, condition=st.condition, last_value=st.last_value,
                consecutive=st.consecutive, last_poll_at=st.last_poll_at,
                last_error=st.last_error,
            )  # fmt: skip

        return cls(
            vm_name=watch.vm_name, monitoring=watch.monitored, alive=state.alive, vim=state.vim,
            kpis=tuple(kpi(k.event_name, state.kpi(k.event_name)) for k in watch.kpis),
        )  # fmt: skip


class MonitorSink(Protocol):
    """Where the monitor's findings go (the daemon: opdata, events, the recovery policy)."""

    async def kpi_changed(self, status: VmStatus) -> None:
        """A KPI's condition or error, the VM's alive flag or the VIM's view changed.

        Not called for every poll: counts and poll times are read with
        ``MonitorService.status(watch)`` when opdata is asked for.
        """
        ...

    async def vm_alive(self, vm_name: str, *, first: bool) -> None:
        """The VM's alive KPI turned TRUE: VM_ALIVE (and SERVICE_ALIVE) when ``first``; for a
        VM being recovered, :class:`~esc_orch.reconcile.recovery.AliveAgain`."""
        ...

    async def recovery_requested(self, request: RecoveryRequest) -> None:
        """Hand to the recovery policy as a :class:`~esc_orch.reconcile.recovery.Trigger`."""
        ...

    async def rule_ran(self, outcome: RuleOutcome) -> None:
        """A rule action's result (a failed or unsupported one is reported)."""
        ...
