"""The monitoring decision as tables: a sequence of polls in, edges and requests out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from esc_orch.monitor.decision import (
    KpiEdge,
    RecoveryRequest,
    RunAction,
    VmAlive,
    VmMonitorState,
    due,
    next_wakeup,
    observe,
)
from esc_orch.monitor.rules import RuleSyntaxError, parse_action
from esc_orch.monitor.types import (
    Edge,
    KpiSpec,
    MetricCond,
    MetricKind,
    RuleActionKind,
    Sample,
    TriggerCause,
    VimView,
    VmWatch,
)

SEED_RULES = ("ALWAYS log", "FALSE recover autohealing", "TRUE servicebooted.sh")


def watch(
    *,
    occ_true: int = 3,
    occ_false: int = 3,
    continuous: bool = False,
    bootup: float = 600,
    wait: float = 60,
    kind: MetricKind = MetricKind.THRESHOLD,
    cond: MetricCond = MetricCond.GT,
    value: float = 50,
    rules: Sequence[str] = SEED_RULES,
    **kw: object,
) -> VmWatch:
    kpi = KpiSpec(
        event_name="VM_ALIVE", collector_type="ICMPPing", kind=kind, metric_value=value,
        metric_cond=cond, occurrences_true=occ_true, occurrences_false=occ_false,
        poll_seconds=15, continuous_alarm=continuous, nicid=0, address="127.0.0.1",
    )  # fmt: skip
    return VmWatch(
        vm_name="vm", tenant="demo", deployment="dep", group="Group1", connector_id="CSP-1",
        bootup_time=bootup, recovery_wait_time=wait, since=0, kpis=(kpi,),
        rules={"VM_ALIVE": tuple(parse_action(r) for r in rules)}, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def run(
    w: VmWatch, values: Sequence[float | None], *, state: VmMonitorState | None = None
) -> tuple[VmMonitorState, list[list[str]]]:
    """Poll every 15 s from t=15; returns the state and each poll's decisions, abbreviated."""
    out: list[list[str]] = []
    for i, v in enumerate(values):
        now = 15.0 * (i + 1)
        sample = Sample(value=v, at=now) if v is not None else Sample(error="boom", at=now)
        state, decisions = observe(w, state, now=now, samples={"VM_ALIVE": sample})
        out.append([_short(d) for d in decisions])
    assert state is not None
    return state, out


def _short(d: object) -> str:
    match d:
        case KpiEdge(edge=edge, repeated=rep, cause=cause):
            return f"edge:{edge}" + ("+" if rep else "") + (f"({cause})" if cause else "")
        case VmAlive(first=first):
            return "alive" + ("!" if first else "")
        case RunAction(action=a):
            return f"{a.kind}:{a.argument}" if a.argument else str(a.kind)
        case RecoveryRequest(cause=c, not_before=nb):
            return f"recover:{c}@{nb:g}"
    raise AssertionError(d)


UP, DOWN = 100.0, 0.0
TRUE_EDGE = ["edge:TRUE", "alive!", "log", "script:servicebooted.sh"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # three answered polls make the VM alive, once; then nothing until it changes
        ([UP, UP, UP, UP], [[], [], TRUE_EDGE, []]),
        # a miss resets the run of successes
        ([UP, UP, DOWN, UP, UP, UP], [[], [], [], [], [], TRUE_EDGE]),
        # before alive, FALSE edges are not raised (the VM is booting)
        ([DOWN, DOWN, DOWN, DOWN, UP, UP, UP], [[], [], [], [], [], [], TRUE_EDGE]),
        # alive, then three misses: FALSE edge, log, recovery not before now + 60 s
        (
            [UP, UP, UP, DOWN, DOWN, DOWN, DOWN],
            [[], [], TRUE_EDGE, [], [], ["edge:FALSE", "log", "recover:kpi-false@150"], []],
        ),
        # two misses and back: no edge (hysteresis)
        ([UP, UP, UP, DOWN, DOWN, UP, DOWN, DOWN], [[], [], TRUE_EDGE, [], [], [], [], []]),
        # errors count for neither side
        ([UP, None, UP, None, UP], [[], [], [], [], TRUE_EDGE]),
        # back to TRUE after FALSE: an edge, alive again (not first)
        (
            [UP, UP, UP, DOWN, DOWN, DOWN, UP, UP, UP],
            [
                [],
                [],
                TRUE_EDGE,
                [],
                [],
                ["edge:FALSE", "log", "recover:kpi-false@150"],
                [],
                [],
                ["edge:TRUE", "alive", "log", "script:servicebooted.sh"],
            ],
        ),
    ],
)
def test_hysteresis_and_edges(values: list[float | None], expected: list[list[str]]) -> None:
    _, got = run(watch(), values)
    assert got == expected


def test_continuous_alarm_repeats_while_the_condition_holds() -> None:
    _, got = run(watch(occ_true=1, occ_false=2, continuous=True), [UP, UP, DOWN, DOWN, DOWN])
    assert got == [
        TRUE_EDGE,
        ["edge:TRUE+", "log", "script:servicebooted.sh"],
        [],
        ["edge:FALSE", "log", "recover:kpi-false@120"],
        ["edge:FALSE+", "log", "recover:kpi-false@135"],
    ]


@pytest.mark.parametrize(
    ("cond", "limit", "value", "holds"),
    [
        (MetricCond.GT, 50, 51, True), (MetricCond.GT, 50, 50, False),
        (MetricCond.GE, 50, 50, True), (MetricCond.LT, 50, 49, True),
        (MetricCond.LT, 50, 50, False), (MetricCond.LE, 50, 50, True),
        (MetricCond.EQ, 7, 7, True), (MetricCond.EQ, 7, 8, False),
    ],
)  # fmt: skip
def test_threshold_conditions(cond: MetricCond, limit: float, value: float, holds: bool) -> None:
    kpi = watch(cond=cond, value=limit).kpis[0]
    assert kpi.holds(value) is holds


def test_success_failure_kind_ignores_the_threshold() -> None:
    kpi = watch(kind=MetricKind.SUCCESS_FAILURE, cond=MetricCond.GT, value=50).kpis[0]
    assert kpi.holds(1) and not kpi.holds(0)


def test_bootup_time_expiry_asks_for_recovery_once() -> None:
    w = watch(bootup=40)
    _, got = run(w, [DOWN, DOWN, DOWN, DOWN])
    assert got == [[], [], ["recover:bootup-expired@45"], []]


def test_no_bootup_expiry_once_alive() -> None:
    _, got = run(watch(occ_true=1, bootup=20), [UP, DOWN])
    assert got == [TRUE_EDGE, []]


def test_a_dead_host_turns_the_kpi_false_at_the_first_failed_check() -> None:
    w = watch()
    state, _ = run(w, [UP, UP, UP])
    state, decisions = observe(w, state, now=50, vim=VimView.HOST_UNREACHABLE)
    assert [_short(d) for d in decisions] == [
        "edge:FALSE(host-down)", "log", "recover:host-down@110",
    ]  # fmt: skip
    assert state.kpi("VM_ALIVE").condition is False and not state.alive
    # the pings that then fail raise nothing more
    state, decisions = observe(w, state, now=60, samples={"VM_ALIVE": Sample(value=0, at=60)})
    assert decisions == ()


def test_a_ping_turning_false_with_the_vim_fault_in_the_same_turn_is_one_edge() -> None:
    """Was lost: the ping's FALSE edge was replaced by the VIM's, which was then skipped
    because the KPI already read FALSE (found through the daemon: no recovery at all)."""
    w = watch()
    state, _ = run(w, [UP, UP, UP, DOWN, DOWN])  # two misses: one more turns it FALSE
    state, decisions = observe(
        w, state, now=90, samples={"VM_ALIVE": Sample(value=0, at=90)},
        vim=VimView.HOST_UNREACHABLE,
    )  # fmt: skip
    assert [_short(d) for d in decisions] == [
        "edge:FALSE(host-down)", "log", "recover:host-down@150",
    ]  # fmt: skip
    assert state.kpi("VM_ALIVE").condition is False and not state.alive


@pytest.mark.parametrize(
    ("view", "cause"),
    [(VimView.STOPPED, "vm-stopped"), (VimView.ERROR, "vm-error"), (VimView.ABSENT, "vm-absent")],
)
def test_the_vim_view_names_the_cause(view: VimView, cause: str) -> None:
    w = watch(wait=0)
    state, _ = run(w, [UP, UP, UP])
    _, decisions = observe(w, state, now=50, vim=view)
    assert f"recover:{cause}@50" in [_short(d) for d in decisions]


def test_the_vim_view_of_a_booting_vm_decides_nothing() -> None:
    _, decisions = observe(watch(), None, now=10, vim=VimView.STOPPED)
    assert decisions == ()


def test_vim_running_decides_nothing() -> None:
    w = watch()
    state, _ = run(w, [UP, UP, UP])
    _, decisions = observe(w, state, now=50, vim=VimView.RUNNING)
    assert decisions == ()


@pytest.mark.parametrize(
    "change", [{"enabled": False}, {"paused": True}, {"kpi_enabled": False}, {"bootup_time": -1}]
)
def test_unmonitored_watches_decide_nothing_and_keep_their_state(change: dict[str, object]) -> None:
    w = watch()
    state, _ = run(w, [UP, UP, UP])
    off = watch(**{"bootup": -1} if "bootup_time" in change else {}, **{
        k: v for k, v in change.items() if k != "bootup_time"})  # fmt: skip
    assert due(off, state, now=1000) == ()
    assert next_wakeup(off, state) is None
    kept, decisions = observe(off, state, now=1000, samples={"VM_ALIVE": Sample(value=0, at=1)})
    assert decisions == () and kept == state


def test_a_new_boot_resets_the_state() -> None:
    w = watch()
    state, _ = run(w, [UP, UP, UP])
    reborn = watch()
    object.__setattr__(reborn, "since", 100.0)
    fresh, decisions = observe(reborn, state, now=101)
    assert not fresh.ever_alive and fresh.since == 100 and decisions == ()


def test_due_and_next_wakeup_follow_the_poll_frequency() -> None:
    w = watch(bootup=600)
    assert due(w, None, now=0) == w.kpis
    state, _ = observe(w, None, now=0, samples={"VM_ALIVE": Sample(value=UP, at=0)})
    assert due(w, state, now=14.9) == ()
    assert due(w, state, now=15) == w.kpis
    assert next_wakeup(w, state) == 15


def test_rule_parsing() -> None:
    a = parse_action("FALSE recover autohealing")
    assert (a.edge, a.kind) == (Edge.FALSE, RuleActionKind.RECOVER)
    s = parse_action("TRUE servicebooted.sh")
    assert (s.kind, s.argument) == (RuleActionKind.SCRIPT, "servicebooted.sh")
    u = parse_action("TRUE scale out")
    assert (u.kind, u.argument) == (RuleActionKind.UNSUPPORTED, "scale out")
    n = parse_action("TRUE esc_vm_alive_notification")
    assert n.kind is RuleActionKind.ALIVE_NOTIFICATION


@pytest.mark.parametrize("text", ["", "log", "SOMETIMES log", "TRUE", "TRUE ../x.sh"])
def test_bad_rule_actions_are_refused(text: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse_action(text)


def test_trigger_cause_of_a_true_edge_recover_rule() -> None:
    _, got = run(watch(occ_true=1, rules=("TRUE recover autohealing",), wait=0), [UP])
    assert got == [["edge:TRUE", "alive!", f"recover:{TriggerCause.RULE}@15"]]


def test_a_lasting_vim_fault_forces_false_once_and_answering_pings_win() -> None:
    w = watch(occ_true=2)
    state, _ = run(w, [UP, UP])
    state, d1 = observe(w, state, now=40, vim=VimView.HOST_UNREACHABLE)
    assert _short(d1[0]) == "edge:FALSE(host-down)"
    got = []
    for i, now in enumerate((45.0, 60.0, 75.0)):
        state, ds = observe(
            w, state, now=now, samples={"VM_ALIVE": Sample(value=UP, at=now)},
            vim=VimView.HOST_UNREACHABLE if i % 2 == 0 else None,
        )  # fmt: skip
        got.append([_short(d) for d in ds])
    assert got == [[], ["edge:TRUE", "alive", "log", "script:servicebooted.sh"], []]
    assert state.alive


def test_a_resumed_recovery_sees_the_vm_alive_again_after_its_conditions_are_forgotten() -> None:
    """Found by the crash matrix's recovery rows: the snapshot (taken before the VM failed)
    held the KPI TRUE, so the VM's answers after the restart made no TRUE edge, the resumed
    recovery never heard it was alive and ended COMPLETE FAILURE with the VM in error."""
    from esc_orch.monitor.snapshot import MonitorSnapshot, forget_conditions  # noqa: PLC0415

    w = watch()
    alive_state, _ = run(w, [UP, UP, UP])  # the snapshot: alive, KPI TRUE
    _, stale = run(w, [UP, UP, UP], state=alive_state)
    assert stale == [[], [], []]  # no edge: nobody hears the VM is alive
    snapshot = forget_conditions(MonitorSnapshot(taken_at=45, vms={"vm": alive_state}), ["vm"])
    state = snapshot.vms["vm"]
    assert state.ever_alive and not state.alive and state.kpi("VM_ALIVE").condition is None
    _, fresh = run(w, [UP, UP, UP], state=state)
    assert fresh[-1][:2] == ["edge:TRUE", "alive"]  # alive again, not the first time
