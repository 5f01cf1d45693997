"""The monitoring's "alive" verdicts, as a group move reads them before moving the next VM.

A vm_group moves one VM at a time so the service keeps running: the next VM is stopped only
once the VM moved last is alive on its target. Alive is the monitoring's verdict (its KPI's
first TRUE edge since the VM booted there) where the VM is monitored; the monitor feeds
:meth:`AliveVerdicts.note`, and the converger asks :meth:`AliveVerdicts.alive_since`.
Without monitoring (unwired, the group has no KPI, or DISABLE_MONITOR), the converger falls
back to the VIM reporting the VM running.

While a run waits for a VM, :attr:`AliveVerdicts.awaited` names it: the monitoring keeps
watching that VM (the rest of a deployment being moved is paused). Waits use the injected
sleep when one is given (tests under a fake clock), else a wake-up by the next verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from esc_orch.vim.retry import Sleep


class AliveVerdicts:
    """Last alive verdict per VM, the VMs a move waits for, and the wake-up (see module)."""

    def __init__(self, *, sleep: Sleep | None = None) -> None:
        self._sleep = sleep
        self._alive_at: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        #: Is the monitoring wired (the daemon's, with KPIs)? Else the VIM's view decides.
        self.enabled = False
        #: VMs a run waits for -> since when (the monitoring watches them during the run).
        self.awaited: dict[str, datetime] = {}

    def wake_on_verdicts(self) -> None:
        """Wait for verdicts, not with the injected sleep (the daemon's monitoring is wired)."""
        self.enabled = True
        self._sleep = None

    def note(self, vm_name: str, *, at: datetime) -> None:
        """The VM's alive KPI turned TRUE at ``at`` (the monitor's VmAlive)."""
        self._alive_at[vm_name] = at
        self._wake.set()
        self._wake = asyncio.Event()

    def alive_since(self, vm_name: str, since: datetime) -> bool:
        at = self._alive_at.get(vm_name)
        return at is not None and at >= since

    def await_vm(self, vm_name: str, *, since: datetime) -> None:
        self.awaited.setdefault(vm_name, since)

    def done(self, vm_name: str) -> None:
        self.awaited.pop(vm_name, None)

    async def wait(self, seconds: float) -> None:
        """Until the next verdict or ``seconds``, whichever comes first."""
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
