"""The monitoring decision, pure: samples + state + time in, new state + decisions out.

No I/O, no clock, no asyncio: :func:`observe` is a table-tested function like the planner.
It applies ESC's rules for one VM:

* **Hysteresis.** A KPI turns TRUE after ``metric_occurrences_true`` true samples in a row and
  FALSE after ``metric_occurrences_false`` false ones; an error sample counts for neither.
* **Edges.** Rules run on the KPI's TRUE / FALSE edges (``ALWAYS`` on both); with
  ``continuous_alarm`` the edge is raised again on every poll that matches.
* **Boot.** Until the VM's alive KPI first turns TRUE the VM is booting: FALSE edges are not
  raised (a booting VM does not answer yet), and when ``bootup_time`` passes without it the
  VM's recovery is asked for.
* **The VIM's view.** When the VIM's view of an alive VM turns to stopped, in error, gone, or
  host not answering, the alive KPI turns FALSE at once (the cause attached): a dead host is
  acted on at the first failed check, not after the ping window. A view that stays so forces
  nothing more (pings that still answer can bring the KPI back).
* **recovery_wait_time.** A ``recover autohealing`` action asks for recovery not before
  ``now + recovery_wait_time``; the recovery policy waits and drops the request when the VM
  came back meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from esc_orch.monitor.types import (
    Edge,
    KpiSpec,
    RuleAction,
    RuleActionKind,
    Sample,
    TriggerCause,
    VimView,
    VmWatch,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiState:
    """What is known of one KPI (also its opdata: last value, consecutive count, last poll)."""

    condition: bool | None = None  # None until enough samples decided it
    true_run: int = 0
    false_run: int = 0
    last_value: float | None = None
    last_error: str | None = None
    last_poll_at: float | None = None

    @property
    def consecutive(self) -> int:
        return max(self.true_run, self.false_run)


@dataclass(frozen=True, slots=True, kw_only=True)
class VmMonitorState:
    since: float
    alive: bool = False  # the alive KPI is TRUE now
    ever_alive: bool = False  # it has been TRUE since ``since``
    bootup_expired: bool = False
    #: No bootup expiry before this (set after a restart: the daemon did not poll meanwhile).
    grace_until: float | None = None
    vim: VimView | None = None
    kpis: Mapping[str, KpiState] = field(default_factory=dict)

    def bootup_deadline(self, watch: VmWatch) -> float:
        return max(self.since + watch.bootup_time, self.grace_until or 0.0)

    def kpi(self, event_name: str) -> KpiState:
        return self.kpis.get(event_name, KpiState())


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiEdge:
    """The KPI turned TRUE or FALSE (``repeated``: a continuous alarm while it stays so)."""

    vm_name: str
    event_name: str
    edge: Edge
    value: float | None
    repeated: bool = False
    cause: TriggerCause | None = None  # set when the VIM's view forced the edge


@dataclass(frozen=True, slots=True, kw_only=True)
class VmAlive:
    """The VM's alive KPI turned TRUE (``first``: the first time since it booted)."""

    vm_name: str
    first: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAction:
    """A rule action to carry out (log, script, alive notification, or report unsupported)."""

    vm_name: str
    event_name: str
    edge: Edge
    action: RuleAction
    value: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryRequest:
    """Recovery of the VM is wanted, not before ``not_before``."""

    vm_name: str
    cause: TriggerCause
    at: float
    not_before: float
    event_name: str | None = None


Decision = KpiEdge | VmAlive | RunAction | RecoveryRequest


# ----------------------------------------------------------------------------- the core


def initial_state(watch: VmWatch) -> VmMonitorState:
    return VmMonitorState(since=watch.since)


def due(watch: VmWatch, state: VmMonitorState | None, *, now: float) -> tuple[KpiSpec, ...]:
    """The KPIs of ``watch`` to poll at ``now``."""
    if not watch.monitored:
        return ()
    if state is None or state.since != watch.since:
        return watch.kpis
    out = []
    for kpi in watch.kpis:
        last = state.kpi(kpi.event_name).last_poll_at
        if last is None or now >= last + kpi.poll_seconds:
            out.append(kpi)
    return tuple(out)


def next_wakeup(watch: VmWatch, state: VmMonitorState | None) -> float | None:
    """When something is next due for ``watch`` (a poll or the bootup deadline)."""
    if not watch.monitored:
        return None
    if state is None or state.since != watch.since:
        return watch.since
    times = []
    for kpi in watch.kpis:
        last = state.kpi(kpi.event_name).last_poll_at
        times.append(watch.since if last is None else last + kpi.poll_seconds)
    if not state.ever_alive and not state.bootup_expired:
        times.append(state.bootup_deadline(watch))
    return min(times) if times else None


def _sample(
    kpi: KpiSpec, st: KpiState, sample: Sample, *, alive: bool
) -> tuple[KpiState, Edge | None, bool]:
    """The KPI's new state, the edge it raises (if any) and whether that edge is a repeat."""
    if sample.value is None:
        return replace(st, last_error=sample.error, last_poll_at=sample.at), None, False
    value = sample.value
    # KpiState built directly (not dataclasses.replace): this runs once per VM and poll.
    if kpi.holds(value):
        true_run = st.true_run + 1
        turned = st.condition is not True and true_run >= kpi.occurrences_true
        new = KpiState(
            condition=True if turned else st.condition, true_run=true_run, false_run=0,
            last_value=value, last_error=None, last_poll_at=sample.at,
        )  # fmt: skip
        if turned:
            return new, Edge.TRUE, False
        if st.condition is True and kpi.continuous_alarm:
            return new, Edge.TRUE, True
        return new, None, False
    false_run = st.false_run + 1
    turned = st.condition is not False and false_run >= kpi.occurrences_false
    new = KpiState(
        condition=False if turned else st.condition, true_run=0, false_run=false_run,
        last_value=value, last_error=None, last_poll_at=sample.at,
    )  # fmt: skip
    if turned:
        return new, (Edge.FALSE if alive else None), False
    if st.condition is False and kpi.continuous_alarm and alive:
        return new, Edge.FALSE, True
    return new, None, False


def _rules(watch: VmWatch, edge: KpiEdge, *, now: float) -> list[RunAction | RecoveryRequest]:
    out: list[RunAction | RecoveryRequest] = []
    for action in watch.rules.get(edge.event_name, ()):
        if not action.fires_on(edge.edge):
            continue
        if action.kind is RuleActionKind.RECOVER:
            cause = edge.cause or (
                TriggerCause.KPI_FALSE if edge.edge is Edge.FALSE else TriggerCause.RULE
            )
            out.append(
                RecoveryRequest(
                    vm_name=watch.vm_name, cause=cause, at=now,
                    not_before=now + watch.recovery_wait_time, event_name=edge.event_name,
                )
            )  # fmt: skip
        else:
            out.append(
                RunAction(
                    vm_name=watch.vm_name, event_name=edge.event_name, edge=edge.edge,
                    action=action, value=edge.value,
                )
            )  # fmt: skip
    return out


def observe(
    watch: VmWatch,
    state: VmMonitorState | None,
    *,
    now: float,
    samples: Mapping[str, Sample] | None = None,
    vim: VimView | None = None,
) -> tuple[VmMonitorState, tuple[Decision, ...]]:
    """Fold new samples (by KPI event_name) and the VIM's view into the VM's state.

    Samples of KPIs the watch does not have are ignored. A watch that is not monitored
    (disabled, paused, ``kpi_data`` disabled, bootup_time -1, no KPI) decides nothing and
    keeps its state as it is, so monitoring resumes where it stopped.
    """
    if state is None or state.since != watch.since:
        state = initial_state(watch)
    if not watch.monitored or not watch.kpis:
        return state, ()
    kpis = dict(state.kpis)
    alive, ever_alive = state.alive, state.ever_alive
    edges: list[KpiEdge] = []
    alive_name = watch.alive_kpi
    for kpi in watch.kpis:
        sample = (samples or {}).get(kpi.event_name)
        if sample is None:
            continue
        new, edge, repeated = _sample(kpi, state.kpi(kpi.event_name), sample, alive=ever_alive)
        kpis[kpi.event_name] = new
        if edge is not None:
            edges.append(
                KpiEdge(
                    vm_name=watch.vm_name, event_name=kpi.event_name, edge=edge,
                    value=new.last_value, repeated=repeated,
                )
            )  # fmt: skip
    # The VIM's view forces FALSE when it turns to a fault, not on every check that repeats it:
    # a host whose API is down while its VM still answers pings must not flap the KPI.
    cause = vim.fault if vim is not None and vim is not state.vim else None
    if cause is not None and alive_name is not None and ever_alive:
        current = kpis.get(alive_name, KpiState())
        spec = watch.kpi(alive_name)
        assert spec is not None
        edges = [e for e in edges if e.event_name != alive_name]
        # Decided on the condition before this turn's samples: a ping that turns the KPI
        # FALSE in the same turn is this one edge (with the VIM's cause), not lost.
        if state.kpi(alive_name).condition is not False:
            kpis[alive_name] = replace(
                current, condition=False, true_run=0,
                false_run=max(current.false_run, spec.occurrences_false),
            )  # fmt: skip
            edges.append(
                KpiEdge(
                    vm_name=watch.vm_name, event_name=alive_name, edge=Edge.FALSE,
                    value=current.last_value, cause=cause,
                )
            )  # fmt: skip
    decisions: list[Decision] = []
    for kedge in edges:
        decisions.append(kedge)
        if kedge.event_name == alive_name and not kedge.repeated:
            if kedge.edge is Edge.TRUE:
                decisions.append(VmAlive(vm_name=watch.vm_name, first=not ever_alive))
                alive = ever_alive = True
            else:
                alive = False
        decisions.extend(_rules(watch, kedge, now=now))
    expired = state.bootup_expired
    if not ever_alive and not expired and now >= state.bootup_deadline(watch):
        expired = True
        decisions.append(
            RecoveryRequest(
                vm_name=watch.vm_name, cause=TriggerCause.BOOTUP_EXPIRED, at=now, not_before=now
            )
        )
    new_state = VmMonitorState(
        since=state.since, alive=alive, ever_alive=ever_alive, bootup_expired=expired,
        grace_until=state.grace_until, vim=vim if vim is not None else state.vim, kpis=kpis,
    )  # fmt: skip
    return new_state, tuple(decisions)
