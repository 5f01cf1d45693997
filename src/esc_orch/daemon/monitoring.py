"""Monitoring and recovery in the daemon: the monitor's and the recovery policy's ports.

:class:`DaemonMonitoring` connects :class:`~esc_orch.monitor.service.MonitorService` and
:class:`~esc_orch.monitor.recovery_driver.RecoveryCoordinator` to the lifecycle:

* **watches and subjects** from the reactor's deployment records and the running
  configuration (cached; rebuilt when a record, the configuration or a deployment's busy
  flag changes). A VM is watched once placed, not when wanted off; DISABLE_MONITOR turns its
  watch off, a run of its deployment (update, move, action) pauses it;
* **the VIM's view** through the shared :class:`~esc_orch.daemon.connectors.ConnectorPool`;
* **recovery steps** executed by the reactor (:mod:`esc_orch.reactor.recovery_step`), the
  only VIM caller, journaled like every step;
* **recovery events** rendered with the seed's messages and written to the durable event log
  with the recovery book and the VM records in one transaction, before the steps they
  announce are handed over (a restart resumes the book: a cut start or reboot is run again,
  a cut undeploy or redeploy is not; the start-up resync leaves such a deployment alone);
* **VM_ALIVE** from the KPI (the reactor no longer reports VMs of watched groups alive when it
  first sees them running), SERVICE_ALIVE when a deploy run left it owed and all are alive;
* **cancels** on a change of a watched group: a locator change is a move, a deleted
  deployment a delete, anything else an update (they also clear "recovery failed");
* the monitor's **snapshot**, persisted every ``SNAPSHOT_INTERVAL`` and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from esc_orch import failpoints
from esc_orch.daemon.config import MonitorSettings
from esc_orch.daemon.lifecycle import Key, LifecycleService
from esc_orch.daemon.monitor_support import (
    MeteredCollector,
    alive_by_monitor,
    count_notice,
    enum_or,
)
from esc_orch.model.config import Deployment, VmGroup
from esc_orch.model.events import EscEvent, EventType
from esc_orch.model.failure import RecoveryFailed, describe
from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.model.record import DeploymentRecord, VmRecord
from esc_orch.monitor.collectors.protocol import Collector, CollectorContext
from esc_orch.monitor.collectors.registry import collector_kind, create_collector
from esc_orch.monitor.collectors.vimview import VimViewSource
from esc_orch.monitor.decision import RecoveryRequest
from esc_orch.monitor.definitions import MetricDefinition
from esc_orch.monitor.ports import SystemClock, VmStatus
from esc_orch.monitor.recovery_driver import RecoveryCoordinator, StepResult
from esc_orch.monitor.rule_runner import RuleOutcome, RuleRunner
from esc_orch.monitor.service import MonitorService
from esc_orch.monitor.snapshot import (
    MonitorSnapshot,
    book_from_json,
    book_to_json,
    forget_conditions,
    snapshot_from_json,
    snapshot_to_json,
)
from esc_orch.monitor.types import VmWatch
from esc_orch.monitor.watch import watch_for
from esc_orch.reactor import vm_details
from esc_orch.reconcile.recovery import (
    Cancel,
    CancelReason,
    IssuedStep,
    Phase,
    RecoveryAction,
    RecoveryBook,
    RecoveryNotice,
    RecoveryRun,
    RecoverySubject,
    RecoveryType,
    recovery_event,
)
from esc_orch.vim.errors import VimError
from esc_orch.vim.protocol import Connector

log = logging.getLogger(__name__)

SNAPSHOT = "monitor_snapshot"
BOOK = "recovery_book"
SNAPSHOT_INTERVAL = 10.0
TICK = 0.5


class DaemonMonitoring:
    """See the module docstring. Build, ``install()`` before the lifecycle starts, ``start()``."""

    def __init__(
        self,
        *,
        lifecycle: LifecycleService,
        settings: MonitorSettings,
        definitions: Mapping[str, MetricDefinition],
        check_timeout: float,
        collectors: Mapping[str, Collector] | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.settings = settings
        self.definitions = dict(definitions)
        self._check_timeout = check_timeout
        self._collectors = dict(collectors) if collectors is not None else None
        self._clock = SystemClock()
        self._started = time.time()
        self._cache_key: tuple[Any, ...] = ()
        self._watches: tuple[VmWatch, ...] = ()
        self._subjects: dict[str, RecoverySubject] = {}
        self._events: list[EscEvent] = []
        self._dirty: set[Key] = set()
        self._complete_failure: dict[str, str] = {}
        self.rule_problems: dict[str, str] = {}
        self.service: MonitorService | None = None
        self.coordinator: RecoveryCoordinator | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loaded: tuple[MonitorSnapshot | None, RecoveryBook | None] | None = None

    # ------------------------------------------------------------------ start / stop

    def install(self) -> None:
        """Hook into the lifecycle (before it starts: its first runs already know)."""
        svc = self.lifecycle
        svc.alive_by_monitor = alive_by_monitor
        svc.reactor.alive.wake_on_verdicts()  # a group's next move waits for the KPI
        svc.change_hooks.append(self.on_deployment_change)
        svc.holds = self.holds
        svc.recovering = self._load
        svc.vm_opdata = self.vm_opdata

    def _collectors_for(self) -> dict[str, Collector]:
        if self._collectors is not None:
            return self._collectors
        from esc_orch.monitor.collectors.registry import known_collector_types  # noqa: PLC0415

        context = CollectorContext(
            allowed=self.settings.allowed, settings={"mode": self.settings.icmp_mode}
        )
        out: dict[str, Collector] = {}
        for name in sorted(known_collector_types(self.definitions)):
            try:
                collector = create_collector(name, context=context, definitions=self.definitions)
                out[name] = MeteredCollector(collector, self._connector_of)
            except Exception:  # one broken collector must not stop the others
                log.exception("collector %s could not be created", name)
        return out

    async def _load(self) -> frozenset[str]:
        """Read the snapshot and the recovery book (once, before the lifecycle resumes): the
        VMs whose recovery the restart resumes, which the start-up resync leaves alone."""
        if self._loaded is None:
            store = self.lifecycle.store
            snapshot = book = None
            with contextlib.suppress(ValueError, TypeError):
                raw = await store.load_state(SNAPSHOT)
                snapshot = snapshot_from_json(json.loads(raw)) if raw else None
            with contextlib.suppress(ValueError, TypeError):
                raw = await store.load_state(BOOK)
                book = book_from_json(json.loads(raw)) if raw else None
            self._loaded = (snapshot, book)
        book = self._loaded[1]
        return frozenset(book.runs) if book is not None else frozenset()

    async def start(self) -> None:
        await self._load()
        assert self._loaded is not None
        snapshot, book = self._loaded
        self.coordinator = RecoveryCoordinator(
            subjects=self, executor=self, reporter=self, clock=self._clock,
            new_uuid=lambda: str(uuid.uuid4()), book=book, persist=self._persist,
        )  # fmt: skip
        if book is not None:
            await self.coordinator.resume()  # cut starts and reboots are handed over again
            book = self.coordinator.book
            for name, run in book.runs.items():
                log.info("recovery of %s resumed after a restart (%s)", name, run.phase)
            awaiting = [n for n, r in book.runs.items() if r.phase is Phase.AWAITING_ALIVE]
            if snapshot is not None and awaiting:
                snapshot = forget_conditions(snapshot, awaiting)
        self.service = MonitorService(
            watches=self, sink=self, collectors=self._collectors_for(), clock=self._clock,
            rules=RuleRunner(
                scripts_dir=self.settings.scripts_dir, time_limit=self.settings.script_timeout
            ),
            vim=VimViewSource(observers=self._observer, check_timeout=self._check_timeout),
            vim_interval=self.settings.vim_interval, snapshot=snapshot,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.service.run(), name="monitor"),
            loop.create_task(self._tick_forever(), name="recovery-tick"),
            loop.create_task(self._snapshot_forever(), name="monitor-snapshot"),
        ]

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._save_snapshot()

    async def _tick_forever(self) -> None:
        assert self.coordinator is not None
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.coordinator.tick()
            except Exception:
                log.exception("recovery tick")

    async def _snapshot_forever(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            try:
                await self._save_snapshot()
            except Exception:
                log.exception("monitor snapshot")

    async def _save_snapshot(self) -> None:
        if self.service is None:
            return
        text = json.dumps(snapshot_to_json(self.service.snapshot()))
        await self.lifecycle.store.save_state(states={SNAPSHOT: text})

    def _connector_of(self, vm_name: str) -> str:
        subject = self._subjects.get(vm_name)
        return subject.connector_id if subject is not None else ""

    def _observer(self, connector_id: str) -> Connector | None:
        try:
            return self.lifecycle.pool(connector_id)
        except (LookupError, ValueError, VimError):
            return None

    # ------------------------------------------------------------------ WatchPort / SubjectPort

    def _entries(self) -> list[tuple[DeploymentRecord, VmRecord, VmGroup]]:
        svc = self.lifecycle
        out = []
        for key in svc.reactor.deployments():
            record = svc.reactor.status(*key)
            deployment = svc.deployments.get(key)
            if record is None or deployment is None:
                continue
            groups = {g.name: g for g in deployment.vm_group}
            for vm in record.vms:
                group = groups.get(vm.identity.group)
                if group is None or vm.applied is None or not group.kpi_data.kpi:
                    continue
                out.append((record, vm, group))
        return out

    def _refresh(self) -> None:
        svc = self.lifecycle
        keys = svc.reactor.deployments()
        awaited = frozenset(svc.reactor.alive.awaited)  # moved VMs a group move waits for
        signature = tuple(
            (svc.reactor.status(*k), svc.deployments.get(k), svc.reactor.busy(*k), awaited)
            for k in keys
        )
        if len(signature) == len(self._cache_key) and all(
            a[0] is b[0] and a[1] is b[1] and a[2] == b[2] and a[3] == b[3]
            for a, b in zip(signature, self._cache_key, strict=True)
        ):
            return
        self._cache_key = signature
        watches: list[VmWatch] = []
        subjects: dict[str, RecoverySubject] = {}
        kinds = {t: collector_kind(t, self.definitions) for t in self.definitions}
        for record, vm, group in self._entries():
            assert vm.applied is not None
            for kpi in group.kpi_data.kpi:
                t = kpi.metric_collector.type
                kinds.setdefault(t, collector_kind(t, self.definitions))
            policy = group.recovery_policy
            subjects[vm.name] = RecoverySubject(
                vm=vm.identity, connector_id=vm.applied.connector_id,
                vim_project=vm.applied.vim_project, spec=vm.applied.spec,
                action=enum_or(RecoveryAction, policy.action_on_recovery,
                             RecoveryAction.REBOOT_THEN_REDEPLOY),
                recovery_type=enum_or(RecoveryType, policy.recovery_type, RecoveryType.AUTO),
                max_retries=policy.max_retries,
                bootup_time=float(group.bootup_time if group.bootup_time > 0 else 600),
            )  # fmt: skip
            if vm.wanted_off:
                continue
            since = vm.booted_at.timestamp() if vm.booted_at is not None else self._started - 1
            addresses = {n.nicid: n.ip_address for n in vm.applied.spec.interfaces if n.ip_address}
            if vm.observed is not None:
                addresses |= {n.nicid: n.ip_address for n in vm.observed.interfaces
                              if n.ip_address}  # fmt: skip
            watches.append(
                watch_for(
                    vm_name=vm.name, tenant=record.tenant, deployment=record.name, group=group,
                    connector_id=vm.applied.connector_id, since=since, kinds=kinds,
                    addresses=addresses, definitions=self.definitions,
                    enabled=not vm.unmonitored,
                    paused=svc.reactor.busy(*record.key) and vm.name not in awaited,
                )
            )  # fmt: skip
        self._watches = tuple(watches)
        self._subjects = subjects

    def watches(self) -> Sequence[VmWatch]:
        self._refresh()
        return self._watches

    def subjects(self) -> Mapping[str, RecoverySubject]:
        self._refresh()
        return self._subjects

    # ------------------------------------------------------------------ StepExecutor

    async def execute(self, step: IssuedStep) -> StepResult:
        result = await self.lifecycle.reactor.recovery.execute(step.action)
        failure = describe(result.failure) if result.failure is not None else None
        return StepResult(ok=result.ok, failure=failure)

    # ------------------------------------------------------------------ RecoveryReporter

    async def notice(self, notice: RecoveryNotice) -> None:
        record = self.lifecycle.reactor.recovery.find(notice.vm_name)
        if record is None:
            log.info("recovery notice for a VM no longer deployed: %s", notice.message)
            return
        entry = record.vm(notice.vm_name)

        def details(identity: Any) -> Any:
            applied = entry.applied if entry is not None else None
            return vm_details(
                identity=identity, connector_id=notice.connector_id or None,
                vim_project=applied.vim_project if applied else None,
                state=entry.observed if entry is not None else None,
                nics=applied.spec.interfaces if applied else (),
            )  # fmt: skip

        event = recovery_event(
            notice, depname=record.name, tenant=record.tenant, tenant_id=record.tenant,
            depid=record.depid, vm_group=notice.source.group, source=details(notice.source),
            target=details(notice.target) if notice.target is not None else None,
        )  # fmt: skip
        self._events.append(event)
        self._dirty.add(record.key)
        if notice.event is EventType.VM_RECOVERY_COMPLETE and not notice.ok:
            self._complete_failure[notice.vm_name] = notice.failure or ""
        log.info(
            "%s %s: %s", notice.event, "SUCCESS" if notice.ok else "FAILURE", notice.message,
            extra={"vm": notice.vm_name, "cause": notice.failure or ""},
        )  # fmt: skip
        count_notice(notice)

    async def vm_state(self, vm_name: str, state: VmLifecycleState) -> None:
        steps = self.lifecycle.reactor.recovery
        failure = None
        if state is VmLifecycleState.ERROR:
            subject = self._subjects.get(vm_name)
            why = self._complete_failure.pop(vm_name, "")
            failure = RecoveryFailed(
                vm_name=vm_name, connector_id=subject.connector_id if subject else "",
                problems=tuple(p for p in why.split("; ") if p),
            )  # fmt: skip
        record = steps.set_vm(vm_name, recovery=state, failure=failure)
        if record is not None:
            self._dirty.add(record.key)

    async def _persist(self, book: RecoveryBook) -> None:
        reactor = self.lifecycle.reactor
        records = [r for k in sorted(self._dirty) if (r := reactor.status(*k)) is not None]
        events, self._events, self._dirty = self._events, [], set()
        await self.lifecycle.store.save_state(
            states={BOOK: json.dumps(book_to_json(book))}, records=records, events=events
        )
        if events:
            failpoints.hit("recovery.after-book")

    # ------------------------------------------------------------------ MonitorSink

    async def kpi_changed(self, status: VmStatus) -> None:
        log.debug("monitoring of %s: alive=%s vim=%s", status.vm_name, status.alive, status.vim)

    async def vm_alive(self, vm_name: str, *, first: bool) -> None:
        self.lifecycle.reactor.alive.note(vm_name, at=datetime.now(UTC))
        if first:
            await self.lifecycle.reactor.recovery.alive(vm_name)
        if self.coordinator is not None:
            await self.coordinator.sink_alive(vm_name)

    async def recovery_requested(self, request: RecoveryRequest) -> None:
        log.info("recovery asked for %s: %s", request.vm_name, request.cause)
        if self.coordinator is not None:
            await self.coordinator.sink_request(request)

    async def rule_ran(self, outcome: RuleOutcome) -> None:
        if outcome.ok and outcome.supported:
            self.rule_problems.pop(outcome.vm_name, None)
            log.info("%s", outcome.message, extra={"vm": outcome.vm_name})
            return
        self.rule_problems[outcome.vm_name] = outcome.message
        log.warning("%s", outcome.message, extra={"vm": outcome.vm_name})

    # ------------------------------------------------------------------ the northbound

    async def manual(self, vm_name: str) -> None:
        """``recoveryVmAction DO``."""
        assert self.coordinator is not None
        await self.coordinator.manual(vm_name)

    def run_of(self, vm_name: str) -> RecoveryRun | None:
        if self.coordinator is None:
            return None
        return self.coordinator.book.runs.get(vm_name)

    def holds(self, key: Key) -> bool:
        """A recovery runs (or failed) on a VM of ``key``: the periodic resync leaves it."""
        if self.coordinator is not None:
            book = self.coordinator.book
        elif self._loaded is not None and self._loaded[1] is not None:
            book = self._loaded[1]  # read, not resumed yet (between the lifecycle's start and ours)
        else:
            return False
        record = self.lifecycle.reactor.status(*key)
        names = record.names() if record is not None else frozenset()
        return bool(names & (set(book.runs) | book.failed))

    def on_deployment_change(
        self, key: Key, before: Deployment | None, after: Deployment | None
    ) -> None:
        """A commit changed deployment ``key`` (on the loop): cancel what it invalidates."""
        record = self.lifecycle.reactor.status(*key)
        if record is None or self.coordinator is None:
            return
        old = {g.name: g for g in before.vm_group} if before is not None else {}
        new = {g.name: g for g in after.vm_group} if after is not None else {}
        cancels: list[Cancel] = []
        now = self._clock.now()
        for vm in record.vms:
            group = vm.identity.group
            if old.get(group) == new.get(group):
                continue
            if group not in new:
                reason = CancelReason.DELETED
            elif group in old and old[group].locator != new[group].locator:
                reason = CancelReason.MOVED
            else:
                reason = CancelReason.UPDATED
            cancels.append(Cancel(vm_name=vm.name, reason=reason, at=now))
            self.lifecycle.reactor.recovery.set_vm(vm.name, recovery=None)
        coordinator = self.coordinator

        async def run() -> None:
            for cancel in cancels:
                await coordinator.handle(cancel)

        if cancels:
            self.lifecycle.spawn(run())

    # ------------------------------------------------------------------ opdata

    def vm_opdata(self, vm: VmRecord) -> Any:
        from esc_orch.daemon.monitor_opdata import monitoring_element  # noqa: PLC0415

        self._refresh()  # on the loop (LifecycleService.opdata): the record's flags now
        watch = next((w for w in self._watches if w.vm_name == vm.name), None)
        status = self.service.status(watch) if self.service and watch else None
        return monitoring_element(
            watch=watch, status=status, run=self.run_of(vm.name),
            rule_problem=self.rule_problems.get(vm.name),
        )  # fmt: skip
