"""The VIM's own view of each watched VM: running, stopped, in error, gone, or host unreachable.

A second signal beside the KPIs: when a CSP host dies, its VMs' pings only fail after
``poll_frequency * metric_occurrences_false``, but the host's API fails at once. One
``list_vms()`` per connector per check covers all its VMs; a connector that does not answer in
time (or answers with a temporary error: connection refused, 5xx) makes every VM on it
HOST_UNREACHABLE. Credentials refused or a state the VIM calls unknown are no signal: the
monitor does not guess.

The source reads through :class:`VmObserver`, which a :class:`~esc_orch.vim.VimConnector`
satisfies as it is; the lead may hand it the reactor's shared connectors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from esc_orch.monitor.types import VimView, VmWatch
from esc_orch.vim.errors import TemporaryVimError, VimAuthError, VimError
from esc_orch.vim.types import PowerState, VmState

log = logging.getLogger(__name__)


class VmObserver(Protocol):
    async def list_vms(self) -> tuple[VmState, ...]: ...


_POWER = {
    PowerState.RUNNING: VimView.RUNNING,
    PowerState.STOPPED: VimView.STOPPED,
    PowerState.ERROR: VimView.ERROR,
}


class VimViewSource:
    def __init__(
        self,
        *,
        observers: Mapping[str, VmObserver] | Callable[[str], VmObserver | None],
        check_timeout: float = 10.0,
    ) -> None:
        self._observers = observers
        self.check_timeout = check_timeout

    def _observer(self, connector_id: str) -> VmObserver | None:
        if callable(self._observers):
            return self._observers(connector_id)
        return self._observers.get(connector_id)

    async def _one(self, connector_id: str) -> tuple[VmState, ...] | VimView | None:
        observer = self._observer(connector_id)
        if observer is None:
            return None
        try:
            return await asyncio.wait_for(observer.list_vms(), self.check_timeout)
        except (TimeoutError, TemporaryVimError, OSError) as exc:
            log.info("VIM %s does not answer: %s", connector_id, exc or type(exc).__name__)
            return VimView.HOST_UNREACHABLE
        except VimAuthError as exc:
            log.warning("VIM %s refused our credentials: %s", connector_id, exc)
            return None
        except VimError as exc:
            log.warning("VIM %s: %s", connector_id, exc)
            return None

    async def observe(self, watches: Sequence[VmWatch]) -> dict[str, VimView]:
        """The view of each watched VM whose VIM said something (by VM name)."""
        by_connector: dict[str, list[VmWatch]] = {}
        for w in watches:
            by_connector.setdefault(w.connector_id, []).append(w)
        ids = sorted(by_connector)
        answers = await asyncio.gather(*(self._one(c) for c in ids))
        out: dict[str, VimView] = {}
        for connector_id, answer in zip(ids, answers, strict=True):
            if answer is None:
                continue
            for w in by_connector[connector_id]:
                if isinstance(answer, VimView):
                    out[w.vm_name] = answer
                    continue
                vm = next((v for v in answer if v.name == w.vm_name), None)
                if vm is None:
                    out[w.vm_name] = VimView.ABSENT
                elif vm.power in _POWER:
                    out[w.vm_name] = _POWER[vm.power]
        return out
