"""The monitoring loop: thin, with everything it touches injected.

Each turn: read what to watch (a port), ask the pure core what is due, collect the due KPIs
— one batch per collector type, all collectors at once — ask the VIMs for their view every
``vim_interval``, fold everything into each VM's state with
:func:`~esc_orch.monitor.decision.observe`, and hand the decisions to the sink: opdata
changes, VM alive, recovery requests, rule results. Rule actions (scripts) run as tasks of
their own so a slow script never delays a poll, and so does the VIM check: a turn waits for it
at most ``vim_patience`` (a dead host's ``list_vms`` can take the connector's retries to fail),
its views are folded in at the turn after it answers, and its answer wakes the loop. The loop
sleeps until the next thing is due (at most ``max_sleep``, so a new deployment is picked up
quickly) on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from esc_orch.monitor.collectors.protocol import Collector
from esc_orch.monitor.collectors.vimview import VimViewSource
from esc_orch.monitor.decision import (
    RecoveryRequest,
    RunAction,
    VmAlive,
    VmMonitorState,
    due,
    next_wakeup,
    observe,
)
from esc_orch.monitor.ports import Clock, MonitorSink, VmStatus, WatchPort
from esc_orch.monitor.rule_runner import RuleRunner
from esc_orch.monitor.snapshot import MonitorSnapshot, grace_for, restore_states
from esc_orch.monitor.types import Sample, Target, VimView, VmWatch

log = logging.getLogger(__name__)


def _headline(state: VmMonitorState | None) -> object:
    """What makes a state change worth pushing: conditions, errors, alive, the VIM's view.

    Counts and poll times change every poll; opdata reads them with :meth:`MonitorService.status`.
    """
    if state is None:
        return None
    kpis = tuple((n, k.condition, k.last_error) for n, k in sorted(state.kpis.items()))
    return (state.since, state.alive, state.ever_alive, state.bootup_expired, state.vim, kpis)


class MonitorService:
    def __init__(
        self,
        *,
        watches: WatchPort,
        sink: MonitorSink,
        collectors: Mapping[str, Collector],
        clock: Clock,
        rules: RuleRunner | None = None,
        vim: VimViewSource | None = None,
        vim_interval: float = 60.0,
        snapshot: MonitorSnapshot | None = None,
        max_sleep: float = 1.0,
        vim_patience: float = 0.05,
    ) -> None:
        self._watches = watches
        self._sink = sink
        self._collectors = dict(collectors)
        self._clock = clock
        self._rules = rules or RuleRunner()
        self._vim = vim
        self._vim_interval = vim_interval
        self._max_sleep = max_sleep
        self._snapshot = snapshot
        self._states: dict[str, VmMonitorState] | None = None
        self._started_at = 0.0
        self._next_vim = 0.0
        self._vim_patience = vim_patience
        self._vim_task: asyncio.Future[dict[str, VimView]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.polls = 0

    # -- state ----------------------------------------------------------------------

    def snapshot(self) -> MonitorSnapshot:
        """The state to persist (the lead stores it; hand it back to the constructor)."""
        return MonitorSnapshot(taken_at=self._clock.now(), vms=dict(self._states or {}))

    def state(self, vm_name: str) -> VmMonitorState | None:
        return (self._states or {}).get(vm_name)

    def status(self, watch: VmWatch) -> VmStatus | None:
        """The VM's monitoring opdata now (last value, count, poll time), read on demand."""
        state = self.state(watch.vm_name)
        return None if state is None else VmStatus.of(watch, state)

    def _state_for(self, watch: VmWatch, now: float) -> VmMonitorState | None:
        assert self._states is not None
        state = self._states.get(watch.vm_name)
        if state is None and watch.since < self._started_at:
            # a VM first seen after our start that booted before it: give it a grace
            state = VmMonitorState(since=watch.since, grace_until=now + grace_for(watch))
        return state

    # -- one turn -------------------------------------------------------------------

    async def _collect(
        self, watches: Sequence[VmWatch], now: float
    ) -> dict[str, dict[str, Sample]]:
        """Samples by VM, then by KPI event_name, for everything due at ``now``."""
        assert self._states is not None
        batches: dict[str, list[Target]] = {}
        for w in watches:
            for kpi in due(w, self._states.get(w.vm_name), now=now):
                batches.setdefault(kpi.collector_type, []).append(
                    Target(
                        key=f"{w.vm_name}/{kpi.event_name}", vm_name=w.vm_name,
                        address=kpi.address, properties=kpi.properties,
                    )
                )  # fmt: skip
        types = sorted(batches)

        async def one(type_name: str) -> Mapping[str, Sample]:
            collector = self._collectors.get(type_name)
            targets = batches[type_name]
            if collector is None:
                problem = f"no collector of type {type_name!r} is configured"
                return {t.key: Sample(error=problem) for t in targets}
            try:
                return await collector.collect(targets)
            except Exception as exc:  # a collector broke its contract: report, keep polling
                log.exception("collector %s failed", type_name)
                return {
                    t.key: Sample(error=f"collector {type_name} failed: {exc}") for t in targets
                }

        results = await asyncio.gather(*(one(t) for t in types))
        out: dict[str, dict[str, Sample]] = {}
        for type_name, result in zip(types, results, strict=True):
            for target in batches[type_name]:
                sample = result.get(target.key) or Sample(error="collector gave no sample")
                vm, _, event = target.key.partition("/")
                out.setdefault(vm, {})[event] = Sample(
                    value=sample.value, error=sample.error, at=now
                )
        return out

    async def run_once(self) -> float | None:
        """One turn; returns when the next thing is due (``None``: nothing is watched)."""
        now = self._clock.now()
        watches = [w for w in self._watches.watches()]
        if self._states is None:
            self._started_at = now
            self._states = restore_states(self._snapshot, now=now, watches=watches)
        by_name = {w.vm_name: w for w in watches}
        for gone in set(self._states) - set(by_name):
            del self._states[gone]
        samples = await self._collect(watches, now)
        views = await self._vim_views(watches, now)
        self.polls += 1
        wakeups: list[float] = []
        for w in watches:
            state = self._state_for(w, now)
            fresh = w.vm_name in samples or w.vm_name in views
            wake = None if fresh else next_wakeup(w, state)
            if fresh or (wake is not None and wake <= now):
                new, decisions = observe(
                    w, state, now=now, samples=samples.get(w.vm_name), vim=views.get(w.vm_name)
                )
                self._states[w.vm_name] = new
                if _headline(new) != _headline(state):
                    await self._sink.kpi_changed(VmStatus.of(w, new))
                await self._dispatch(w, decisions)
                wake = next_wakeup(w, new)
            elif state is not None:
                self._states[w.vm_name] = state
            if wake is not None:
                wakeups.append(wake)
        if self._vim is not None and any(w.monitored for w in watches):
            wakeups.append(self._next_vim)
        return min(wakeups) if wakeups else None

    async def _vim_views(self, watches: Sequence[VmWatch], now: float) -> dict[str, VimView]:
        """The VIM check's views once it has answered (started every ``vim_interval``)."""
        if self._vim is None:
            return {}
        if self._vim_task is None and now >= self._next_vim:
            self._next_vim = now + self._vim_interval
            self._vim_task = asyncio.ensure_future(
                self._vim.observe([w for w in watches if w.monitored])
            )
        task = self._vim_task
        if task is None:
            return {}
        if not task.done():
            await asyncio.wait({task}, timeout=self._vim_patience)
            if not task.done():
                return {}  # still asking: the pings go on; its answer wakes the loop
        self._vim_task = None
        try:
            return task.result()
        except Exception:  # the source never raises for a VIM; a bug must not stop polling
            log.exception("VIM view check failed")
            return {}

    async def _dispatch(self, watch: VmWatch, decisions: Sequence[object]) -> None:
        for d in decisions:
            if isinstance(d, VmAlive):
                await self._sink.vm_alive(d.vm_name, first=d.first)
            elif isinstance(d, RecoveryRequest):
                await self._sink.recovery_requested(d)
            elif isinstance(d, RunAction):
                task = asyncio.create_task(self._run_rule(d, watch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run_rule(self, decision: RunAction, watch: VmWatch) -> None:
        try:
            outcome = await self._rules.run(decision, watch)
            await self._sink.rule_ran(outcome)
        except Exception:  # the runner never raises; the sink might
            log.exception("rule action %s on %s", decision.action.text, watch.vm_name)

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Turn until :meth:`stop`."""
        while not self._stopping.is_set():
            next_at = await self.run_once()
            if self._stopping.is_set():
                break
            now = self._clock.now()
            delay = (
                self._max_sleep
                if next_at is None
                else min(max(next_at - now, 0.0), self._max_sleep)
            )
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            stopper = asyncio.ensure_future(self._stopping.wait())
            waits: set[asyncio.Future[Any]] = {sleeper, stopper}
            if self._vim_task is not None and not self._vim_task.done():
                waits.add(self._vim_task)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for f in (sleeper, stopper):
                f.cancel()

    async def rules_settled(self) -> None:
        """Wait for the rule actions started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()
        if self._vim_task is not None:
            self._vim_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for collector in self._collectors.values():
            await collector.aclose()
