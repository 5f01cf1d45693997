"""The lifecycle in the daemon: commits become reactor runs, VMs appear on the CSP hosts.

:class:`LifecycleService` connects the parts that know nothing of each other:

* the datastore's commit listener (a worker thread) → a :class:`DeploymentTarget` per changed
  deployment (``None`` for a deleted one, so deleting a tenant undeploys its deployments),
  handed to the event loop with ``call_soon_threadsafe`` and submitted to the
  :class:`~esc_orch.reactor.Reactor`;
* shared, long-lived VIM connectors built from the running ``vim_connector`` configuration
  (:class:`ConnectorPool`; rebuilt when a connector changes);
* the durable :class:`~esc_orch.store.journal.LifecycleStore` (journal, memory, event log);
* start-up: ``reactor.resume`` with a target for every configured deployment, plus undeploy
  targets for deployments the store remembers but the configuration no longer has;
* a periodic resync of the healthy deployments (``[lifecycle] resync_interval``);
* ``opdata/tenants`` (see :mod:`esc_orch.daemon.opdata`) and the ESC actions
  (:mod:`esc_orch.daemon.actions`).

Test hook: ``ESC_ORCHD_TEST_KILL_AT=intent:N|outcome:N|event:N`` makes the daemon SIGKILL
itself right after its N-th durable intent, before recording its N-th outcome (the VIM call is
done, nothing about it is durable) or right after its N-th durable event. Crash tests use it
to stop at exact points; it is never set in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree

from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.vim_supervisor import connector_config
from esc_orch.model.config import Deployment, Flavor
from esc_orch.model.config import VimConnector as ConnectorModel
from esc_orch.model.convert import unit_model
from esc_orch.model.diff import ConfigDiff
from esc_orch.model.events import EscEvent
from esc_orch.northbound.esc_rpcs import EscActionSink
from esc_orch.reactor import DeploymentTarget, Intent, Outcome, Reactor
from esc_orch.reconcile.vocab import DeploymentState, Operation
from esc_orch.store.journal import DeploymentMemory, LifecycleStore
from esc_orch.vim.metered import create_metered_connector as create_connector
from esc_orch.vim.protocol import VimConnector
from esc_orch.vim.retry import RetryPolicy
from esc_orch.vim.types import ConnectorConfig

log = logging.getLogger(__name__)

KILL_ENV = "ESC_ORCHD_TEST_KILL_AT"
Key = tuple[str, str]
ConnectorFactory = Callable[[ConnectorConfig], VimConnector]


class ConnectorPool:
    """One long-lived connector per configured VIM connector id (the reactor's provider)."""

    def __init__(self, *, factory: ConnectorFactory = create_connector) -> None:
        self._factory = factory
        self._configs: dict[str, ConnectorConfig] = {}
        self._live: dict[str, VimConnector] = {}

    def configure(self, connector_id: str, model: ConnectorModel | None) -> None:
        """A connector was created, changed or (``None``) deleted: drop the old instance."""
        old = self._live.pop(connector_id, None)
        if old is not None:
            asyncio.get_running_loop().create_task(old.close())
        if model is None:
            self._configs.pop(connector_id, None)
        else:
            self._configs[connector_id] = connector_config(model)

    def __call__(self, connector_id: str) -> VimConnector:
        live = self._live.get(connector_id)
        if live is None:
            config = self._configs.get(connector_id)
            if config is None:
                raise LookupError(f"no VIM connector {connector_id!r} is configured")
            live = self._live[connector_id] = self._factory(config)
        return live

    async def close(self) -> None:
        live, self._live = list(self._live.values()), {}
        for connector in live:
            with contextlib.suppress(Exception):
                await connector.close()


class _KillHook:
    """Journal + EventSink in front of the store that SIGKILLs the process at a set point."""

    def __init__(self, inner: LifecycleStore, spec: str) -> None:
        point, _, count = spec.partition(":")
        if point not in ("intent", "outcome", "event") or not count.isdigit():
            raise ValueError(f"{KILL_ENV} must be intent:N, outcome:N or event:N, not {spec!r}")
        self._inner, self._point, self._left = inner, point, int(count)

    def _tick(self, point: str) -> None:
        if point == self._point:
            self._left -= 1
            if self._left == 0:
                log.warning("test hook %s: killing the daemon after %s", KILL_ENV, point)
                os.kill(os.getpid(), signal.SIGKILL)

    async def record_intent(self, intent: Intent) -> None:
        await self._inner.record_intent(intent)
        self._tick("intent")

    async def record_outcome(self, outcome: Outcome) -> None:
        self._tick("outcome")
        await self._inner.record_outcome(outcome)

    async def unfinished(self) -> tuple[Intent, ...]:
        return await self._inner.unfinished()

    async def publish(self, event: EscEvent) -> None:
        await self._inner.publish(event)
        self._tick("event")


def _models(store: Any, kind: str) -> dict[tuple[str, ...], Any]:
    return {unit.key: unit_model(kind, xml) for unit, xml in store.running_units(kind).items()}


class LifecycleService:
    """Owns the reactor of the daemon; see the module docstring."""

    def __init__(
        self,
        *,
        datastore: Any,
        settings: LifecycleSettings,
        factory: ConnectorFactory = create_connector,
    ) -> None:
        self.datastore = datastore
        self.settings = settings
        self.store = LifecycleStore(engine=datastore.engine, events=datastore.events)
        self.pool = ConnectorPool(factory=factory)
        spec = os.environ.get(KILL_ENV)
        port: Any = _KillHook(self.store, spec) if spec else self.store
        self.reactor = Reactor(
            connectors=self.pool,
            journal=port,
            events=port,
            sleep=asyncio.sleep,
            new_uuid=lambda: str(uuid.uuid4()),
            max_parallel=settings.max_parallel,
            retry=RetryPolicy(
                attempts=settings.retry_attempts,
                base_delay=settings.retry_base_delay,
                max_delay=settings.retry_max_delay,
            ),
        )
        self.deployments: dict[Key, Deployment] = {}
        self.flavors: dict[str, Flavor] = {}
        self.connectors: dict[str, ConnectorModel] = {}
        self.stopped: dict[Key, frozenset[str]] = {}
        self.unmonitored: dict[Key, frozenset[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._resync: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The ESC action sink (daemon/actions.py), set by the wiring.
        self.actions: EscActionSink | None = None

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Load running config and memory, resume unfinished work, listen to commits."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        running = await asyncio.to_thread(self._read_running)
        self.flavors, self.connectors, self.deployments = running
        for cid, model in self.connectors.items():
            self.pool.configure(cid, model)
        memories = {m.key: m for m in await self.store.memories()}
        targets = [
            self._resume_target(key, memories.get(key))
            for key in sorted(self.deployments.keys() | memories.keys())
        ]
        for memory in memories.values():
            self.stopped[memory.key] = memory.stopped
            self.unmonitored[memory.key] = memory.unmonitored
        closed = await self.reactor.resume(targets)
        log.info(
            "lifecycle started",
            extra={"deployments": len(targets), "abandoned_steps": len(closed)},
        )
        self.datastore.add_listener(self.on_commit)
        self.datastore.add_state_provider(self.opdata)
        self._resync = self._loop.create_task(self._resync_forever(), name="lifecycle-resync")

    def _read_running(
        self,
    ) -> tuple[dict[str, Flavor], dict[str, ConnectorModel], dict[Key, Deployment]]:
        flavors = {key[0]: m for key, m in _models(self.datastore, "flavor").items()}
        connectors = {key[0]: m for key, m in _models(self.datastore, "vim_connector").items()}
        deployments = {
            (key[0], key[1]): m for key, m in _models(self.datastore, "deployment").items()
        }
        return flavors, connectors, deployments

    def _resume_target(self, key: Key, memory: DeploymentMemory | None) -> DeploymentTarget:
        deployment = self.deployments.get(key)
        if memory is None:
            return self.target(key)
        restored: dict[str, Any] = {
            "known": memory.known,
            "applied": memory.applied,
            "depid": memory.depid,
            "alive": memory.alive,
            "stopped": memory.stopped,
        }
        if deployment is None:  # deleted while we were down (or mid-undeploy)
            return self.target(key, operation=Operation.UNDEPLOY, **restored)
        if memory.owed_service_action is not None:
            # a serviceAction's run was cut: finish it quietly, the action's own SERVICE_*
            # event is owed instead (LifecycleActions.settle_owed sends it)
            return self.target(key, operation=memory.unfinished, quiet=True, **restored)
        if memory.unfinished is not None:  # a run was cut: finish it, its events are owed
            return self.target(key, operation=memory.unfinished, **restored)
        operation = Operation.UPDATE if memory.active else None
        return self.target(key, operation=operation, resync=True, **restored)

    async def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync
        for task in list(self._tasks):
            task.cancel()
        await self.pool.close()
        await self.store.flush()
        self.store.close()

    # ------------------------------------------------------------------ targets

    def target(self, key: Key, **overrides: Any) -> DeploymentTarget:
        """The desired state of ``key`` from the running configuration."""
        fields: dict[str, Any] = {
            "tenant": key[0],
            "name": key[1],
            "deployment": self.deployments.get(key),
            "flavors": dict(self.flavors),
            "connectors": dict(self.connectors),
            "stopped": self.stopped.get(key, frozenset()),
        }
        fields.update(overrides)
        if fields.get("operation") is Operation.UNDEPLOY:
            fields["deployment"] = None
        return DeploymentTarget(**fields)

    def on_commit(self, diff: ConfigDiff) -> None:
        """Datastore listener (the committing worker thread): parse here, act on the loop."""
        flavors = [(c.unit.key[0], c.after_model) for c in diff.of_kind("flavor")]
        connectors = [(c.id, c.after) for c in diff.vim_connectors()]
        deployments = [((d.tenant, d.name), d.after) for d in diff.deployments()]
        if not (flavors or connectors or deployments):
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._apply, flavors, connectors, deployments)

    def _apply(
        self,
        flavors: list[tuple[str, Flavor | None]],
        connectors: list[tuple[str, ConnectorModel | None]],
        deployments: list[tuple[Key, Deployment | None]],
    ) -> None:
        for name, flavor in flavors:
            _put(self.flavors, name, flavor)
        for cid, model in connectors:
            _put(self.connectors, cid, model)
            self.pool.configure(cid, model)
        for key, deployment in deployments:
            _put(self.deployments, key, deployment)
            self.reactor.submit(self.target(key))

    async def _resync_forever(self) -> None:
        """Re-converge healthy deployments now and then: drift on the hosts is repaired."""
        healthy = (DeploymentState.ACTIVE, DeploymentState.STOPPED)
        while True:
            await asyncio.sleep(self.settings.resync_interval)
            for key in sorted(self.deployments):
                status = self.reactor.status(*key)
                if status is None or status.state not in healthy or self.reactor.busy(*key):
                    continue
                self.reactor.submit(self.target(key, resync=True))
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.prune_journal)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, kept until done (action follow-ups)."""
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ opdata

    def opdata(self) -> etree._Element:
        """``opdata/tenants`` (called from a NETCONF worker thread)."""
        from esc_orch.daemon.opdata import tenants_element  # noqa: PLC0415 - keeps this small

        loop = self._loop
        if loop is None:
            return tenants_element([], unmonitored={})

        def build() -> etree._Element:
            statuses = [self.reactor.status(*key) for key in self.reactor.deployments()]
            return tenants_element(
                [s for s in statuses if s is not None], unmonitored=dict(self.unmonitored)
            )

        async def snapshot() -> etree._Element:
            return build()

        if threading.get_ident() == self._loop_thread:
            return build()  # already on the loop: nothing can change under us
        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=10)


def _put(table: dict[Any, Any], key: Any, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
