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

What a deployment is comes from its :class:`~esc_orch.model.record.DeploymentRecord` (the
reactor's, persisted by the store): the VMs wanted off or unmonitored, the run a crash cut. The
service keeps no copy of those facts. Crash tests stop the daemon at the store's failpoints
(:mod:`esc_orch.failpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from lxml import etree

from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.connectors import ConnectorFactory, ConnectorPool
from esc_orch.model.config import Deployment, Flavor
from esc_orch.model.config import VimConnector as ConnectorModel
from esc_orch.model.convert import unit_model
from esc_orch.model.diff import ConfigDiff
from esc_orch.model.lifecycle import DeploymentState, LifecycleOperation
from esc_orch.model.record import DeploymentRecord
from esc_orch.northbound.esc_rpcs import EscActionSink
from esc_orch.reactor import DeploymentTarget, Reactor
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from esc_orch.vim import create_connector
from esc_orch.vim.retry import RetryPolicy

log = logging.getLogger(__name__)

Key = tuple[str, str]
K = TypeVar("K")
V = TypeVar("V")


M = TypeVar("M", Flavor, ConnectorModel, Deployment)


def _models(store: SqlDatastore, kind: str, model: type[M]) -> dict[tuple[str, ...], M]:
    """The running units of ``kind`` as their pydantic models (checked to be ``model``)."""
    out: dict[tuple[str, ...], M] = {}
    for unit, xml in store.running_units(kind).items():
        parsed = unit_model(kind, xml)
        if not isinstance(parsed, model):
            raise TypeError(f"{kind} unit {unit.key} is a {type(parsed).__name__}")
        out[unit.key] = parsed
    return out


class LifecycleService:
    """Owns the reactor of the daemon; see the module docstring."""

    def __init__(
        self,
        *,
        datastore: SqlDatastore,
        settings: LifecycleSettings,
        factory: ConnectorFactory = create_connector,
        pool: ConnectorPool | None = None,
    ) -> None:
        self.datastore = datastore
        self.settings = settings
        self.store = LifecycleStore(engine=datastore.engine, events=datastore.events)
        #: Shared with the VIM supervisor (one connector per id, one health truth).
        self.pool = pool if pool is not None else ConnectorPool(factory=factory)
        self.reactor = Reactor(
            connectors=self.pool,
            journal=self.store,
            events=self.store,
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
        #: The newest configuration transaction that changed each deployment (its targets
        #: carry it: their service event settles the commit's owed event in the store).
        self.txids: dict[Key, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._resync: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
        records = {r.key: r for r in await self.store.records()}
        owed = await self.store.owed_runs()
        self.txids.update(owed)
        targets = [
            self._resume_target(key, records.get(key), owed=key in owed)
            for key in sorted(self.deployments.keys() | records.keys())
        ]
        closed = await self.reactor.resume(targets, records=tuple(records.values()))
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
        store = self.datastore
        flavors = {key[0]: m for key, m in _models(store, "flavor", Flavor).items()}
        connectors = {
            key[0]: m for key, m in _models(store, "vim_connector", ConnectorModel).items()
        }
        deployments = {
            (key[0], key[1]): m for key, m in _models(store, "deployment", Deployment).items()
        }
        return flavors, connectors, deployments

    def _resume_target(
        self, key: Key, record: DeploymentRecord | None, *, owed: bool = False
    ) -> DeploymentTarget:
        """The run that finishes what the record says was cut (the reactor restores it).

        ``owed``: a committed change of the deployment has no service event logged yet (the
        store's ``lifecycle_owed_run``, written by the commit itself): the run sends it.
        """
        if record is None:
            return self.target(key)
        stopped = record.wanted_off()
        reboot = record.wanted_reboot()
        if key not in self.deployments:  # deleted while we were down (or mid-undeploy)
            return self.target(key, operation=LifecycleOperation.UNDEPLOY, stopped=stopped)
        quiet = record.quiet_run or record.owed_service_action is not None
        if quiet and not owed:
            # an action's run was cut: finish it quietly, the action's own events are owed
            # instead (VM events by the reactor, SERVICE_* by LifecycleActions.settle_owed)
            return self.target(
                key, operation=record.run, quiet=True, stopped=stopped, reboot=reboot
            )
        if record.run is not None or owed:  # a run was cut or never ran: its events are owed
            operation = record.run
            if operation is None and record.ever_active:
                operation = LifecycleOperation.UPDATE
            return self.target(key, operation=operation, stopped=stopped, reboot=reboot)
        operation = LifecycleOperation.UPDATE if record.ever_active else None
        return self.target(key, operation=operation, resync=True, stopped=stopped)

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

    def target(
        self,
        key: Key,
        *,
        operation: LifecycleOperation | None = None,
        stopped: frozenset[str] | None = None,
        resync: bool = False,
        quiet: bool = False,
        reboot: frozenset[str] = frozenset(),
    ) -> DeploymentTarget:
        """The desired state of ``key``: the running configuration and the record's flags."""
        if stopped is None:
            record = self.reactor.status(*key)
            stopped = record.wanted_off() if record is not None else frozenset()
        undeploy = operation is LifecycleOperation.UNDEPLOY
        return DeploymentTarget(
            tenant=key[0],
            name=key[1],
            deployment=None if undeploy else self.deployments.get(key),
            flavors=dict(self.flavors),
            connectors=dict(self.connectors),
            stopped=stopped,
            operation=operation,
            resync=resync,
            quiet=quiet,
            reboot=reboot,
            txid=self.txids.get(key, 0),
        )

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
        loop.call_soon_threadsafe(self._apply, flavors, connectors, deployments, diff.txid)

    def _apply(
        self,
        flavors: list[tuple[str, Flavor | None]],
        connectors: list[tuple[str, ConnectorModel | None]],
        deployments: list[tuple[Key, Deployment | None]],
        txid: int = 0,
    ) -> None:
        for name, flavor in flavors:
            _put(self.flavors, name, flavor)
        for cid, model in connectors:
            _put(self.connectors, cid, model)
            self.pool.configure(cid, model)
        for key, deployment in deployments:
            _put(self.deployments, key, deployment)
            self.txids[key] = max(self.txids.get(key, 0), txid)
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

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
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
            return tenants_element([])

        def build() -> etree._Element:
            records = [self.reactor.status(*key) for key in self.reactor.deployments()]
            return tenants_element([r for r in records if r is not None])

        async def snapshot() -> etree._Element:
            return build()

        if threading.get_ident() == self._loop_thread:
            return build()  # already on the loop: nothing can change under us
        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=10)


def _put(table: dict[K, V], key: K, value: V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
