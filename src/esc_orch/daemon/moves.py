"""Proof for moves in the daemon: fence agents from the configuration, operator confirmations.

:class:`DaemonProofSources` is the reactor's :class:`~esc_orch.reactor.proofgate.ProofSources`:

* **Fence agents** are configured per VIM connector, in that connector's own configuration
  (``esc_system_config/vim_connectors/vim_connector``), so a host's power controller is named
  where the host is: our augment ``eo:fence_agent`` (yang/esc-orch.yang) — ``type`` (an entry
  point of ``esc_orch.fence_agents``, e.g. ``CSP_SIM_POWER``), ``url``, ``host`` (the host
  name the controller must report, default the connector id), ``username`` and ``password``
  (a secret leaf: encrypted at rest, masked in get and get-config), ``timeout`` and the
  agent's own ``properties``.
* **Confirmations** (``eo:confirm-host-down``) are durable (``store/confirmations.py``) and
  served under ``opdata/vim_connectors`` (``eo:host_down_confirmation``).
* **Re-arming**: a confirmation, a recheck or an edit wakes every move waiting for proof.

:class:`MoveControls` carries out our RPCs (:mod:`esc_orch.northbound.eo_rpcs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from esc_orch.fence import FenceAgent, FenceAgentConfig, create_fence_agent
from esc_orch.fence.settings import agent_config
from esc_orch.model.clock import Clock, utc_now
from esc_orch.model.config import VimConnector
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.store.confirmations import ConfirmationStore

if TYPE_CHECKING:
    from esc_orch.daemon.lifecycle import LifecycleService
    from esc_orch.daemon.vim_supervisor import VimSupervisor

log = logging.getLogger(__name__)

FenceFactory = Callable[[FenceAgentConfig], FenceAgent]


def fence_config(model: VimConnector) -> tuple[FenceAgentConfig, str] | None:
    """The fence agent of ``model``'s host and the host name, or None when none is set."""
    if model.fence_agent is None:
        return None
    return agent_config(connector_id=model.id, settings=model.fence_agent)


class DaemonProofSources:
    """Fence agents, confirmations and the re-arm signal (see the module docstring)."""

    def __init__(
        self,
        *,
        store: ConfirmationStore,
        factory: FenceFactory = create_fence_agent,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._factory = factory
        self._clock = clock
        self._configs: dict[str, tuple[FenceAgentConfig, str]] = {}
        self._agents: dict[str, tuple[FenceAgent, str]] = {}
        self._confirmations: dict[str, HostDownConfirmation] = {}
        self._wake = asyncio.Event()

    # -- configuration ---------------------------------------------------------------
    def configure(self, connector_id: str, model: VimConnector | None) -> None:
        found = fence_config(model) if model is not None else None
        if self._configs.get(connector_id) == found:
            return
        self._agents.pop(connector_id, None)
        if found is None:
            self._configs.pop(connector_id, None)
        else:
            self._configs[connector_id] = found

    async def load(self) -> None:
        self._confirmations = await asyncio.to_thread(self._store.all)

    # -- ProofSources ----------------------------------------------------------------
    def fence_agent(self, connector_id: str) -> tuple[FenceAgent, str] | None:
        agent = self._agents.get(connector_id)
        if agent is not None:
            return agent
        found = self._configs.get(connector_id)
        if found is None:
            return None
        config, host = found
        try:
            built = (self._factory(config), host)
        except (LookupError, ValueError) as exc:
            log.warning("fence agent of %s cannot be built: %s", connector_id, exc)
            return None
        self._agents[connector_id] = built
        return built

    def confirmation(self, connector_id: str) -> HostDownConfirmation | None:
        return self._confirmations.get(connector_id)

    def confirmations(self) -> Mapping[str, HostDownConfirmation]:
        return dict(self._confirmations)

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # -- changes ---------------------------------------------------------------------
    def rearm(self) -> None:
        """Wake every waiting move now (each decides again with what is known now)."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def confirm(self, connector_id: str, *, by: str) -> HostDownConfirmation:
        confirmation = HostDownConfirmation(host=connector_id, by=by, at=self._clock())
        await asyncio.to_thread(self._store.save, confirmation)
        self._confirmations[connector_id] = confirmation
        log.info(
            "host of VIM connector %s confirmed down by %s",
            connector_id,
            by,
            extra={"connector": connector_id, "user": by},
        )
        self.rearm()
        return confirmation

    async def close(self) -> None:
        for agent, _host in self._agents.values():
            with contextlib.suppress(Exception):
                await agent.close()
        self._agents.clear()


class MoveControls:
    """The :class:`~esc_orch.northbound.eo_rpcs.EoActionSink` of the daemon."""

    def __init__(self, *, lifecycle: LifecycleService, supervisor: VimSupervisor) -> None:
        self._lifecycle = lifecycle
        self._supervisor = supervisor

    def _known(self, vim_id: str, rpc: str) -> None:
        if vim_id not in self._lifecycle.connectors:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"no VIM connector {vim_id!r} is configured",
                path=f"/eo:{rpc}/eo:vim_id",
                info={"bad-element": "vim_id"},
            )

    async def confirm_host_down(self, vim_id: str, *, user: str) -> None:
        self._known(vim_id, "confirm-host-down")
        await self._lifecycle.proof_sources.confirm(vim_id, by=user)
        self._lifecycle.rearm(vim_id)

    async def recheck_vim_connector(self, vim_id: str) -> None:
        self._known(vim_id, "recheck-vim-connector")
        state = await self._supervisor.recheck(vim_id)
        log.info(
            "VIM connector %s rechecked on demand: %s",
            vim_id,
            state.status if state is not None else "not configured",
            extra={"connector": vim_id},
        )
        self._lifecycle.rearm(vim_id)


def identity_changes(before: VimConnector, after: VimConnector) -> list[str]:
    """What of a connector names its host: a change is a move of every VM placed on it."""
    changed = [
        f"{name} {before.properties.get(name)!r} → {after.properties.get(name)!r}"
        for name in ("url",)
        if (before.properties.get(name) or "") != (after.properties.get(name) or "")
    ]
    if before.type != after.type:
        changed.insert(0, f"type {before.type} → {after.type}")
    return changed
