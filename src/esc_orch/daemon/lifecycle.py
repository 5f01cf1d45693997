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
  targets for deployments the store remembers but the configuration no longer has (a plain
  resync of a deployment whose recovery resumes is left to that recovery);
* a periodic resync of the healthy deployments (``[lifecycle] resync_interval``), and of every
  deployment not at its desired state, errored ones included, with bounded backoff
  (``error_retry_delay`` doubling up to ``resync_interval``); an edit naming a deployment (even
  an identical one), ``eo:confirm-host-down``, ``eo:recheck-vim-connector`` and a connector
  found healthy again re-arm the work at once (:meth:`LifecycleService.rearm`);
* proof for moves away from silent hosts (:mod:`esc_orch.daemon.moves`);
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
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from lxml import etree

from esc_orch.daemon.config import LifecycleSettings
from esc_orch.daemon.connectors import ConnectorFactory, ConnectorPool
from esc_orch.daemon.moves import DaemonProofSources, identity_changes
from esc_orch.model.config import Deployment, Flavor, default_connector
from esc_orch.model.config import VimConnector as ConnectorModel
from esc_orch.model.convert import unit_model
from esc_orch.model.diff import ConfigDiff
from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.model.failure import FailureCause, cause_of
from esc_orch.model.lifecycle import DeploymentState, LifecycleOperation
from esc_orch.model.record import DeploymentRecord, VmRecord
from esc_orch.model.schema import ESC_PREFIX
from esc_orch.model.units import UnitId
from esc_orch.northbound.esc_rpcs import EscActionSink
from esc_orch.reactor import DeploymentTarget, Reactor
from esc_orch.reconcile.proof import ProofPolicy
from esc_orch.store.confirmations import ConfirmationStore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from esc_orch.vim.metered import create_metered_connector as create_connector
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
        #: Fence agents, operator confirmations, the re-arm signal (daemon/moves.py).
        self.proof_sources = DaemonProofSources(store=ConfirmationStore(engine=datastore.engine))
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
            proof_sources=self.proof_sources,
            proof_policy=ProofPolicy(timeout=timedelta(seconds=settings.proof_timeout)),
            observe_timeout=settings.observe_timeout,
            alive_timeout=settings.move_alive_timeout,
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
        #: Errored deployments: when each is tried again, and how many tries so far.
        self._retry_at: dict[Key, float] = {}
        self._tries: dict[Key, int] = {}
        #: The ESC action sink (daemon/actions.py), set by the wiring.
        self.actions: EscActionSink | None = None
        # Monitoring hooks (daemon/monitoring.py installs them; none without monitoring):
        #: vm_groups of a deployment whose VM_ALIVE a KPI sends (DeploymentTarget).
        self.alive_by_monitor: Callable[[Deployment | None], frozenset[str]] = lambda _d: (
            frozenset()
        )
        #: Called on the loop for each committed deployment change: (key, before, after).
        self.change_hooks: list[Callable[[Key, Deployment | None, Deployment | None], None]] = []
        #: A recovery holds the deployment: the periodic resync leaves it alone.
        self.holds: Callable[[Key], bool] = lambda _k: False
        #: At start-up, before resuming: the VMs whose recovery the restart resumes (their
        #: deployments' start-up resync is left to that recovery, see :meth:`start`).
        self.recovering: Callable[[], Awaitable[frozenset[str]]] = _nothing_recovering
        #: The eo:monitoring element of a VM in opdata.
        self.vm_opdata: Callable[[VmRecord], Any] | None = None

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Load running config and memory, resume unfinished work, listen to commits."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        running = await asyncio.to_thread(self._read_running)
        self.flavors, self.connectors, self.deployments = running
        for cid, model in self.connectors.items():
            self.pool.configure(cid, model)
            self.proof_sources.configure(cid, model)
        await self.proof_sources.load()
        records = {r.key: r for r in await self.store.records()}
        owed = await self.store.owed_runs()
        self.txids.update(owed)
        targets = [
            self._resume_target(key, records.get(key), owed=key in owed)
            for key in sorted(self.deployments.keys() | records.keys())
        ]
        # A deployment whose recovery resumes, with nothing else owed, is the recovery's: the
        # plain resync would repair its VM itself (start a VM the crash left off, reporting
        # VM_STARTED and SERVICE_UPDATED) while the recovery runs its cut step again. The
        # periodic resync leaves it alone likewise (``holds``) until the recovery ends.
        recovering = await self.recovering()
        held = frozenset(
            t.key for t in targets
            if t.resync and (r := records.get(t.key)) is not None and r.names() & recovering
        )  # fmt: skip
        closed = await self.reactor.resume(targets, records=tuple(records.values()), hold=held)
        log.info(
            "lifecycle started",
            extra={"deployments": len(targets), "abandoned_steps": len(closed)},
        )
        self.datastore.add_listener(self.on_commit)
        self.datastore.add_touch_listener(self.on_touch)
        self.datastore.add_acceptance_check(self.acceptance_errors)
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
        await self.proof_sources.close()
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
            alive_by_monitor=self.alive_by_monitor(None if undeploy else self.deployments.get(key)),
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
            self.proof_sources.configure(cid, model)
        for key, deployment in deployments:
            before = self.deployments.get(key)
            _put(self.deployments, key, deployment)
            self._forget_retry(key)
            for hook in self.change_hooks:
                try:
                    hook(key, before, deployment)
                except Exception:  # a hook must not keep the change from running
                    log.exception("deployment change hook")
            self.txids[key] = max(self.txids.get(key, 0), txid)
            self.reactor.submit(self.target(key))
        if deployments or connectors:
            self.proof_sources.rearm()

    # ------------------------------------------------------------------ edit-time checks

    def acceptance_errors(self, diff: ConfigDiff) -> list[RpcError]:
        """Refuse pointing a VIM connector that deployments use at another host (issue 14,
        defect 1): its VMs would be created again there while the old copies keep running
        where no connector reaches them. Which deployments use it is said in the error."""
        errors: list[RpcError] = []
        after = {(d.tenant, d.name): d.after for d in diff.deployments()}
        connectors = dict(self.connectors)
        for change in diff.vim_connectors():
            if change.after is not None:
                connectors[change.id] = change.after
        for change in diff.vim_connectors():
            if change.before is None or change.after is None:
                continue
            what = identity_changes(change.before, change.after)
            if not what:
                continue
            users = sorted(
                f"{key[0]}/{key[1]}"
                for key in self.deployments.keys() | after.keys() | set(self.reactor.deployments())
                if self._placed_on(key, change.id, after, connectors)
            )
            if not users:
                continue
            errors.append(
                RpcError(
                    tag=ErrorTag.INVALID_VALUE,
                    app_tag="vim-connector-in-use",
                    message=(
                        f"VIM connector {change.id} is used by deployment(s) {', '.join(users)}: "
                        f"changing its {'; '.join(what)} would point it at another host while "
                        "their VMs run on the old one; move those deployments to another "
                        "connector (locator) or delete them first"
                    ),
                    path=(
                        f"/{ESC_PREFIX}:esc_system_config/{ESC_PREFIX}:vim_connectors"
                        f"/{ESC_PREFIX}:vim_connector[{ESC_PREFIX}:id='{change.id}']"
                        f"/{ESC_PREFIX}:properties"
                        f"/{ESC_PREFIX}:property[{ESC_PREFIX}:name='url']/{ESC_PREFIX}:value"
                    ),
                )
            )
        return errors

    def _placed_on(
        self,
        key: Key,
        connector_id: str,
        after: dict[Key, Deployment | None],
        connectors: dict[str, ConnectorModel],
    ) -> bool:
        deployment = after[key] if key in after else self.deployments.get(key)
        if deployment is not None and any(
            (g.locator.vim_id or default_connector(connectors)) == connector_id
            for g in deployment.vm_group
        ):
            return True
        record = self.reactor.status(*key)
        return record is not None and any(
            v.applied is not None and v.applied.connector_id == connector_id for v in record.vms
        )

    # ------------------------------------------------------------------ nothing stuck

    def on_touch(self, units: frozenset[UnitId]) -> None:
        """Datastore touch listener (committing thread): an edit named these units, changed or
        not. A named deployment that is not at its desired state is re-armed at once."""
        keys = [(u.key[0], u.key[1]) for u in units if u.kind == "deployment" and len(u.key) == 2]
        loop = self._loop
        if not keys or loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._rearm_keys, keys)

    def _rearm_keys(self, keys: list[Key]) -> None:
        self.proof_sources.rearm()
        for key in keys:
            if key not in self.deployments or self.reactor.busy(*key):
                continue  # changed: already submitted by the commit listener
            if not self._at_desired(key):
                log.info("re-armed by an edit", extra={"deployment": f"{key[0]}/{key[1]}"})
                self._forget_retry(key)
                self.reactor.submit(self.target(key))

    def _at_desired(self, key: Key) -> bool:
        status = self.reactor.status(*key)
        healthy = (DeploymentState.ACTIVE, DeploymentState.STOPPED)
        return status is not None and status.state in healthy and status.last_failure is None

    def uses(self, key: Key, connector_id: str) -> bool:
        """Does deployment ``key`` place VMs on ``connector_id``, or may a copy be left there?"""
        deployment = self.deployments.get(key)
        if deployment is not None and any(
            (g.locator.vim_id or default_connector(self.connectors)) == connector_id
            for g in deployment.vm_group
        ):
            return True
        record = self.reactor.status(*key)
        return record is not None and any(
            connector_id in v.left_on
            or connector_id in (v.seen_on, v.applied.connector_id if v.applied else None)
            for v in record.vms
        )

    def rearm(self, connector_id: str) -> None:
        """Work waiting on ``connector_id`` goes on now: waiting moves decide again, and every
        deployment using it is converged (errored ones reported, healthy ones as a resync,
        which removes a stale copy a returning host holds).

        Deployments that may have left a stale copy there (``VmRecord.left_on``) go first
        (their runs delete such a copy before any other step); the others are converged once
        those runs have ended, so nothing else is reconciled on a returning host before its
        stale copies are gone."""
        self.proof_sources.rearm()
        keys = [
            key
            for key in sorted(self.deployments.keys() | set(self.reactor.deployments()))
            if not self.reactor.busy(*key) and self.uses(key, connector_id)
        ]
        first = [key for key in keys if self._may_hold_stale(key, connector_id)]
        rest = [key for key in keys if key not in first]
        for key in first:
            self._resubmit(key, connector_id)
        if first and rest:
            self.spawn(self._rearm_after(first, rest, connector_id))
        else:
            for key in rest:
                self._resubmit(key, connector_id)

    def _may_hold_stale(self, key: Key, connector_id: str) -> bool:
        record = self.reactor.status(*key)
        return record is not None and any(
            connector_id in v.left_on
            or (v.seen_on == connector_id and v.connector_id not in (None, connector_id))
            for v in record.vms
        )

    async def _rearm_after(self, first: list[Key], rest: list[Key], connector_id: str) -> None:
        for key in first:
            await self.reactor.wait(*key)
        for key in rest:
            if not self.reactor.busy(*key):
                self._resubmit(key, connector_id)

    def _resubmit(self, key: Key, connector_id: str) -> None:
        self._forget_retry(key)
        healthy = self._at_desired(key)
        log.info(
            "re-armed: VIM connector %s",
            connector_id,
            extra={"deployment": f"{key[0]}/{key[1]}", "connector": connector_id},
        )
        self.reactor.submit(self.target(key, resync=healthy))

    def connector_up(self, connector_id: str) -> None:
        """The VIM supervisor found ``connector_id`` healthy again: reconcile at once."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self.rearm(connector_id)
        else:
            loop.call_soon_threadsafe(self.rearm, connector_id)

    @staticmethod
    def _rolled_back(record: DeploymentRecord) -> bool:
        """A move that failed on its target and was put back: the service runs; it is tried
        again on the next edit or RPC, not by the resync (each try would stop the VM)."""
        note = record.last_failure
        return note is not None and cause_of(note.failure) is FailureCause.ROLLED_BACK

    def _forget_retry(self, key: Key) -> None:
        self._retry_at.pop(key, None)
        self._tries.pop(key, None)

    def _errored_due(self, key: Key, now: float) -> bool:
        """An errored deployment is retried with bounded backoff: error_retry_delay, doubling
        up to resync_interval."""
        due = self._retry_at.get(key)
        if due is None:
            tries = self._tries.get(key, 0)
            delay = min(self.settings.error_retry_delay * 2**tries, self.settings.resync_interval)
            self._retry_at[key] = now + delay
            return False
        if now < due:
            return False
        self._tries[key] = self._tries.get(key, 0) + 1
        del self._retry_at[key]
        return True

    async def _resync_forever(self) -> None:
        """Re-converge every deployment now and then: healthy ones each ``resync_interval``
        (drift on the hosts is repaired), the others — errored ones included — with backoff."""
        loop = asyncio.get_running_loop()
        tick = min(self.settings.resync_interval, self.settings.error_retry_delay)
        last_full = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            full = now - last_full >= self.settings.resync_interval
            if full:
                last_full = now
            self._resync_pass(now, full=full)
            if full:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.prune_journal)

    def _resync_pass(self, now: float, *, full: bool) -> None:
        """One turn of :meth:`_resync_forever` at loop time ``now``.

        Deleted deployments the reactor still has a record of are walked too: their undeploy
        failed (or was cut) and their VMs may still run, so they are retried with the same
        backoff (found by the fault matrix: a host down or credentials refused during an
        undeploy left the VM until a re-arm).
        """
        for key in sorted(self.deployments.keys() | set(self.reactor.deployments())):
            status = self.reactor.status(*key)
            if status is None or self.reactor.busy(*key):
                continue
            if self.holds(key):  # a recovery is at work on it (or gave up): leave it
                continue
            if key not in self.deployments:
                if self._errored_due(key, now):
                    log.info(
                        "retrying the undeploy of a deleted deployment (try %d)",
                        self._tries.get(key, 0),
                        extra={"deployment": f"{key[0]}/{key[1]}"},
                    )
                    self.reactor.submit(self.target(key, operation=LifecycleOperation.UNDEPLOY))
            elif self._at_desired(key):
                self._forget_retry(key)
                if full:
                    self.reactor.submit(self.target(key, resync=True))
            elif self._rolled_back(status):
                continue  # the VM runs on its source again: retrying would bounce it
            elif self._errored_due(key, now):
                log.info(
                    "retrying a deployment not at its desired state (try %d)",
                    self._tries.get(key, 0),
                    extra={"deployment": f"{key[0]}/{key[1]}"},
                )
                self.reactor.submit(self.target(key))

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
            return tenants_element([r for r in records if r is not None], vm_extra=self.vm_opdata)

        async def snapshot() -> etree._Element:
            return build()

        if threading.get_ident() == self._loop_thread:
            return build()  # already on the loop: nothing can change under us
        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=10)


async def _nothing_recovering() -> frozenset[str]:
    return frozenset()


def _put(table: dict[K, V], key: K, value: V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
