"""Recovery policy, pure: which step next for a failed VM, and what to report.

ESC recovers a VM by its ``recovery_policy``: REBOOT_ONLY reboots it, REDEPLOY_ONLY undeploys
and redeploys it (a new vmid, reported in ``vm_target``), REBOOT_THEN_REDEPLOY does one then the
other; the cycle is tried ``max_retries`` times (at least once). ``recovery_type`` MANUAL leaves
it to ``recoveryVmAction DO``. :func:`recover` folds one input (a trigger, a step's outcome, the
VM alive again, a cancel, or the time) into the :class:`RecoveryBook` and returns the actions the
reactor executes (the same :mod:`~esc_orch.model.actions` it journals for plans, sent
with ``report=None`` because the recovery events below are the report) and the notices to emit.

Rules (reference §6, and the seed's timings):

* One recovery per VM at a time: a trigger for a VM being recovered is folded into it, so a
  flapping KPI, a host-down signal and a manual action arriving together give one recovery.
* ``recovery_wait_time``: an automatic trigger acts at its ``not_before``; a VM that comes back
  meanwhile is not recovered and nothing is reported. VM_RECOVERY_INIT is sent when acting.
* After a reboot (or a start, for a VM found stopped) — succeeded or failed — the VM gets
  ``bootup_time`` to be alive again. The seed shows exactly this: INIT, REBOOT FAILURE 62 s
  later, COMPLETE FAILURE 600 s (its bootup_time) after that. A failed undeploy or redeploy
  ends its attempt at once.
* The last attempt failing sends COMPLETE FAILURE and leaves the VM in error; automatic
  triggers are then ignored until the northbound acts (a :class:`Cancel`, e.g. the VM moved)
  or sends ``recoveryVmAction DO`` (a MANUAL trigger).
* A deployment deleted or moved during a recovery cancels it (VM_RECOVERY_CANCELLED once the
  recovery was announced). A step's outcome that arrives after that is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from esc_orch.model.actions import Action, CreateVm, DeleteReason, DeleteVm, PowerOn, Reboot
from esc_orch.model.events import EventType
from esc_orch.model.lifecycle import VmLifecycleState
from esc_orch.model.vim import VmSpec
from esc_orch.reconcile.identity import UuidFactory, VmIdentity
from esc_orch.reconcile.recovery_events import RecoveryNotice as RecoveryNotice  # noqa: PLC0414
from esc_orch.reconcile.recovery_events import recovery_event as recovery_event  # noqa: PLC0414


class TriggerCause(StrEnum):
    """Why a recovery was asked for."""

    KPI_FALSE = "kpi-false"  # the KPI turned false after the VM was alive
    BOOTUP_EXPIRED = "bootup-expired"  # not alive within bootup_time
    VM_STOPPED = "vm-stopped"  # the VIM says the VM is stopped (behind our back)
    VM_ERROR = "vm-error"  # the VIM says the VM is in error
    VM_ABSENT = "vm-absent"  # the VIM no longer knows the VM
    HOST_DOWN = "host-down"  # the VIM (host) does not answer
    MANUAL = "manual"  # recoveryVmAction DO
    RULE = "rule"  # a "recover autohealing" on a TRUE edge (unusual, but configurable)


class RecoveryAction(StrEnum):
    """``recovery_policy/action_on_recovery``."""

    REBOOT_ONLY = "REBOOT_ONLY"
    REBOOT_THEN_REDEPLOY = "REBOOT_THEN_REDEPLOY"
    REDEPLOY_ONLY = "REDEPLOY_ONLY"


class RecoveryType(StrEnum):
    AUTO = "AUTO"
    MANUAL = "MANUAL"


class CancelReason(StrEnum):
    DELETED = "deleted"  # the deployment (or the VM) is being undeployed
    MOVED = "moved"  # the northbound moved the VM (locator change)
    UPDATED = "updated"  # an update of the deployment began


class Phase(StrEnum):
    WAITING = "waiting"  # recovery_wait_time not over yet
    STEP = "step"  # an action is with the reactor
    AWAITING_ALIVE = "awaiting-alive"  # after a reboot or redeploy: bootup_time to be alive


class Step(StrEnum):
    REBOOT = "reboot"
    POWER_ON = "power-on"
    UNDEPLOY = "undeploy"
    REDEPLOY = "redeploy"


# ------------------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverySubject:
    """What recovering one VM needs to know (from the deployment record)."""

    vm: VmIdentity
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    action: RecoveryAction = RecoveryAction.REBOOT_THEN_REDEPLOY
    recovery_type: RecoveryType = RecoveryType.AUTO
    max_retries: int = 3
    bootup_time: float = 600

    @property
    def stages(self) -> tuple[Step, ...]:
        """The reboot/redeploy stages of the whole recovery, in order."""
        cycle = {
            RecoveryAction.REBOOT_ONLY: (Step.REBOOT,),
            RecoveryAction.REDEPLOY_ONLY: (Step.REDEPLOY,),
            RecoveryAction.REBOOT_THEN_REDEPLOY: (Step.REBOOT, Step.REDEPLOY),
        }[self.action]
        return cycle * max(1, self.max_retries)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryRun:
    """One VM's recovery in progress (its opdata: "recovery attempt in progress")."""

    vm_name: str
    cause: TriggerCause
    phase: Phase
    source: VmIdentity  # the VM as it was when recovery began
    current: VmIdentity  # after a redeploy: the new vmid
    stage: int = 0  # index into RecoverySubject.stages
    step: Step | None = None
    seq: int = 0  # id of the step with the reactor; outcomes must name it
    act_at: float = 0.0  # WAITING: when to act
    deadline: float | None = None  # AWAITING_ALIVE: when the attempt has failed
    announced: bool = False  # VM_RECOVERY_INIT sent
    failures: tuple[str, ...] = ()
    #: The step was with the reactor when the daemon died (its outcome lost): its event is
    #: owed, sent when the VM is seen alive (ok) or its boot time runs out (failed).
    cut: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryBook:
    """Every recovery in progress, the VMs left in error, and the step counter."""

    runs: Mapping[str, RecoveryRun] = field(default_factory=dict)
    failed: frozenset[str] = frozenset()
    next_seq: int = 1


# inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    vm_name: str
    cause: TriggerCause
    at: float
    not_before: float | None = None  # None: at once


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOutcome:
    vm_name: str
    seq: int
    at: float
    ok: bool
    failure: str | None = None  # the typed failure's sentence, when not ok


@dataclass(frozen=True, slots=True, kw_only=True)
class AliveAgain:
    vm_name: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    vm_name: str
    reason: CancelReason
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    at: float


RecoveryInput = Trigger | StepOutcome | AliveAgain | Cancel | Tick


# outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedStep:
    """An action for the reactor; report its outcome as ``StepOutcome(seq=...)``."""

    vm_name: str
    seq: int
    action: Action


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryEffects:
    steps: tuple[IssuedStep, ...] = ()
    notices: tuple[RecoveryNotice, ...] = ()
    #: VM state to show in opdata: RECOVERING, ALIVE (recovered) or ERROR (gave up).
    vm_states: tuple[tuple[str, VmLifecycleState], ...] = ()
    #: Facts for the log (a trigger folded into a running recovery, a MANUAL VM...).
    notes: tuple[str, ...] = ()

    def __add__(self, other: RecoveryEffects) -> RecoveryEffects:
        return RecoveryEffects(
            steps=self.steps + other.steps,
            notices=self.notices + other.notices,
            vm_states=self.vm_states + other.vm_states,
            notes=self.notes + other.notes,
        )


# ------------------------------------------------------------------------------ the policy

_NONE = RecoveryEffects()


def _with(book: RecoveryBook, run: RecoveryRun | None, name: str) -> RecoveryBook:
    runs = dict(book.runs)
    if run is None:
        runs.pop(name, None)
    else:
        runs[name] = run
    return replace(book, runs=runs)


def _notice(
    run: RecoveryRun, subject: RecoverySubject, event: EventType, *, ok: bool,
    failure: str | None = None, target: bool = False,
) -> RecoveryNotice:  # fmt: skip
    return RecoveryNotice(
        event=event, ok=ok, vm_name=run.vm_name, source=run.source,
        target=run.current if target else None, connector_id=subject.connector_id,
        failure=failure,
    )  # fmt: skip


def _issue(
    book: RecoveryBook, run: RecoveryRun, subject: RecoverySubject, step: Step,
    new_uuid: UuidFactory,
) -> tuple[RecoveryBook, RecoveryEffects]:  # fmt: skip
    seq = book.next_seq
    vm = run.current
    action: Action
    match step:
        case Step.REBOOT:
            action = Reboot(vm=vm, connector_id=subject.connector_id, report=None)
        case Step.POWER_ON:
            action = PowerOn(vm=vm, connector_id=subject.connector_id, report=None)
        case Step.UNDEPLOY:
            action = DeleteVm(
                vm=vm, connector_id=subject.connector_id, keep_disk=False,
                reason=DeleteReason.UNDEPLOY, report=None,
            )  # fmt: skip
        case Step.REDEPLOY:
            vm = replace(vm, vmid=new_uuid())  # a redeploy gives a new vmid
            action = CreateVm(
                vm=vm, connector_id=subject.connector_id, vim_project=subject.vim_project,
                spec=subject.spec,
            )  # fmt: skip
    run = replace(run, phase=Phase.STEP, step=step, seq=seq, current=vm, deadline=None)
    book = replace(_with(book, run, run.vm_name), next_seq=seq + 1)
    return book, RecoveryEffects(steps=(IssuedStep(vm_name=run.vm_name, seq=seq, action=action),))


def _start_stage(
    book: RecoveryBook, run: RecoveryRun, subject: RecoverySubject, new_uuid: UuidFactory
) -> tuple[RecoveryBook, RecoveryEffects]:
    stage = subject.stages[run.stage]
    if stage is Step.REDEPLOY:
        first = Step.UNDEPLOY
    elif run.cause is TriggerCause.VM_STOPPED:
        first = Step.POWER_ON  # a stopped VM cannot be rebooted: it is started
    else:
        first = Step.REBOOT
    return _issue(book, run, subject, first, new_uuid)


def _attempt_over(
    book: RecoveryBook, run: RecoveryRun, subject: RecoverySubject, new_uuid: UuidFactory
) -> tuple[RecoveryBook, RecoveryEffects]:
    if run.stage + 1 < len(subject.stages):
        return _start_stage(book, replace(run, stage=run.stage + 1), subject, new_uuid)
    reason = "; ".join(run.failures) or "the VM did not come alive again"
    done = _notice(
        run, subject, EventType.VM_RECOVERY_COMPLETE, ok=False, failure=reason, target=True
    )
    book = replace(_with(book, None, run.vm_name), failed=book.failed | {run.vm_name})
    return book, RecoveryEffects(
        notices=(done,), vm_states=((run.vm_name, VmLifecycleState.ERROR),)
    )


def _act(
    book: RecoveryBook, run: RecoveryRun, subject: RecoverySubject, new_uuid: UuidFactory
) -> tuple[RecoveryBook, RecoveryEffects]:
    init = _notice(run, subject, EventType.VM_RECOVERY_INIT, ok=True)
    run = replace(run, announced=True)
    book, effects = _start_stage(book, run, subject, new_uuid)
    return book, RecoveryEffects(
        notices=(init,), vm_states=((run.vm_name, VmLifecycleState.RECOVERING),)
    ) + effects


def _tick(
    book: RecoveryBook, at: float, subjects: Mapping[str, RecoverySubject], new_uuid: UuidFactory
) -> tuple[RecoveryBook, RecoveryEffects]:
    effects = _NONE
    for name in sorted(book.runs):
        run = book.runs[name]
        subject = subjects.get(name)
        if subject is None:
            continue
        if run.phase is Phase.WAITING and at >= run.act_at:
            book, more = _act(book, run, subject, new_uuid)
            effects += more
        elif run.phase is Phase.AWAITING_ALIVE and run.deadline is not None and at >= run.deadline:
            why = f"not alive within {subject.bootup_time:g} s"
            if run.cut:
                effects += RecoveryEffects(notices=_owed_step(run, subject, ok=False, why=why))
                run = replace(run, cut=False)
            run = replace(run, failures=(*run.failures, why))
            book, more = _attempt_over(book, run, subject, new_uuid)
            effects += more
    return book, effects


def _trigger(
    book: RecoveryBook, t: Trigger, subject: RecoverySubject,
    new_uuid: UuidFactory,
) -> tuple[RecoveryBook, RecoveryEffects]:  # fmt: skip
    name = t.vm_name
    manual = t.cause is TriggerCause.MANUAL
    running = book.runs.get(name)
    if running is not None:
        note = f"{name}: {t.cause} folded into the recovery in progress ({running.cause})"
        if manual and running.phase is Phase.WAITING:
            book = _with(book, replace(running, act_at=min(running.act_at, t.at)), name)
            book, effects = _tick(book, t.at, {name: subject}, new_uuid)
            return book, RecoveryEffects(notes=(note,)) + effects
        return book, RecoveryEffects(notes=(note,))
    if not manual and subject.recovery_type is RecoveryType.MANUAL:
        return book, RecoveryEffects(
            notes=(f"{name}: {t.cause}; recovery_type MANUAL waits for recoveryVmAction DO",)
        )
    if not manual and name in book.failed:
        return book, RecoveryEffects(
            notes=(f"{name}: {t.cause} ignored: recovery already failed, the VM stays in error",)
        )
    act_at = t.at if manual or t.not_before is None else t.not_before
    run = RecoveryRun(
        vm_name=name, cause=t.cause, phase=Phase.WAITING, source=subject.vm,
        current=subject.vm, act_at=act_at,
    )  # fmt: skip
    book = replace(_with(book, run, name), failed=book.failed - {name})
    return _tick(book, t.at, {name: subject}, new_uuid)


def _outcome(
    book: RecoveryBook, o: StepOutcome, subject: RecoverySubject, new_uuid: UuidFactory
) -> tuple[RecoveryBook, RecoveryEffects]:
    run = book.runs.get(o.vm_name)
    if run is None or run.phase is not Phase.STEP or run.seq != o.seq:
        return book, RecoveryEffects(notes=(f"{o.vm_name}: stale outcome of step {o.seq}",))
    failures = run.failures if o.ok else (*run.failures, o.failure or f"{run.step} failed")
    run = replace(run, failures=failures)
    match run.step:
        case Step.REBOOT | Step.POWER_ON:
            notice = _notice(run, subject, EventType.VM_RECOVERY_REBOOT, ok=o.ok, failure=o.failure)
            run = replace(run, phase=Phase.AWAITING_ALIVE, deadline=o.at + subject.bootup_time)
            return _with(book, run, o.vm_name), RecoveryEffects(notices=(notice,))
        case Step.UNDEPLOY:
            notice = _notice(
                run, subject, EventType.VM_RECOVERY_UNDEPLOYED, ok=o.ok, failure=o.failure
            )
            if not o.ok:
                book, effects = _attempt_over(book, run, subject, new_uuid)
                return book, RecoveryEffects(notices=(notice,)) + effects
            book, effects = _issue(book, run, subject, Step.REDEPLOY, new_uuid)
            return book, RecoveryEffects(notices=(notice,)) + effects
        case _:
            notice = _notice(
                run, subject, EventType.VM_RECOVERY_DEPLOYED, ok=o.ok, failure=o.failure,
                target=True,
            )  # fmt: skip
            if not o.ok:
                book, effects = _attempt_over(book, run, subject, new_uuid)
                return book, RecoveryEffects(notices=(notice,)) + effects
            run = replace(run, phase=Phase.AWAITING_ALIVE, deadline=o.at + subject.bootup_time)
            return _with(book, run, o.vm_name), RecoveryEffects(notices=(notice,))


def recover(
    book: RecoveryBook,
    event: RecoveryInput,
    *,
    subjects: Mapping[str, RecoverySubject],
    new_uuid: UuidFactory,
) -> tuple[RecoveryBook, RecoveryEffects]:
    """Fold one input into the book; ``subjects`` by VM name (the deployment records)."""
    if isinstance(event, Tick):
        return _tick(book, event.at, subjects, new_uuid)
    name = event.vm_name
    subject = subjects.get(name)
    run = book.runs.get(name)
    if isinstance(event, Cancel):
        book = replace(_with(book, None, name), failed=book.failed - {name})
        if run is None:
            return book, _NONE
        if not run.announced or subject is None:
            return book, RecoveryEffects(notes=(f"{name}: recovery dropped ({event.reason})",))
        notice = _notice(run, subject, EventType.VM_RECOVERY_CANCELLED, ok=True)
        return book, RecoveryEffects(notices=(notice,), notes=(f"{name}: {event.reason}",))
    if subject is None:
        return book, RecoveryEffects(notes=(f"{name}: not a known VM, nothing to recover",))
    if isinstance(event, Trigger):
        return _trigger(book, event, subject, new_uuid)
    if isinstance(event, StepOutcome):
        return _outcome(book, event, subject, new_uuid)
    # AliveAgain
    if run is None:
        return book, _NONE
    if run.phase is Phase.WAITING:
        return _with(book, None, name), RecoveryEffects(
            notes=(f"{name}: alive again before recovery began; nothing done",)
        )
    if run.phase is Phase.AWAITING_ALIVE:
        owed = _owed_step(run, subject, ok=True) if run.cut else ()
        done = _notice(run, subject, EventType.VM_RECOVERY_COMPLETE, ok=True, target=True)
        return _with(book, None, name), RecoveryEffects(
            notices=(*owed, done), vm_states=((name, VmLifecycleState.ALIVE),)
        )
    return book, _NONE  # alive while a step runs: the step's outcome decides


def _owed_step(
    run: RecoveryRun, subject: RecoverySubject, *, ok: bool, why: str | None = None
) -> tuple[RecoveryNotice, ...]:
    """The event of a step cut by a restart (``run.cut``), now that its effect is known."""
    failure = None if ok else f"{why}; the step's outcome was lost in a restart"
    match run.step:
        case Step.REBOOT | Step.POWER_ON:
            event, target = EventType.VM_RECOVERY_REBOOT, False
        case Step.UNDEPLOY:
            event, target = EventType.VM_RECOVERY_UNDEPLOYED, False
        case Step.REDEPLOY:
            event, target = EventType.VM_RECOVERY_DEPLOYED, True
        case _:
            return ()
    return (_notice(run, subject, event, ok=ok, failure=failure, target=target),)


#: Steps whose effect is the same when run twice: a start or reboot of the same VM. A cut one
#: is run again after a restart (see :func:`resume`); an undeploy or redeploy is not.
REDOABLE = frozenset({Step.REBOOT, Step.POWER_ON})


def resume(
    book: RecoveryBook,
    *,
    at: float,
    subjects: Mapping[str, RecoverySubject],
    new_uuid: UuidFactory,
) -> tuple[RecoveryBook, RecoveryEffects]:
    """The book after a restart, and the steps to hand over again.

    A step still in the book (phase STEP) was cut by the crash: its outcome never reached the
    book, so it provably did not finish (its VIM call may or may not have been made), and its
    event was not sent (the book is written with the events it produced).

    * A start or reboot (:data:`REDOABLE`) is **run again**: running it twice does what
      running it once does, so the recovery goes on as it would have without the crash (its
      VM_RECOVERY_REBOOT from the new outcome, its boot time from then). The start-up resync
      leaves the deployment to it — otherwise the resync itself would start a VM the crash
      left off and report VM_STARTED and SERVICE_UPDATED, events the recovery does not have.
    * An undeploy or redeploy is **not** (deleting or creating twice is not the same): the VM
      gets ``bootup_time`` from now to be alive, and the step's event is owed (``cut``) — sent
      as a success when the VM is seen alive, before COMPLETE, or as a failure when the time
      runs out, before the next attempt or COMPLETE FAILURE.

    A recovery already awaiting its VM alive gets ``bootup_time`` from now too (at least):
    nobody watched while the daemon was down.
    """
    effects = _NONE
    for name in sorted(book.runs):
        run = book.runs[name]
        subject = subjects.get(name)
        if subject is None:
            continue
        if run.phase is Phase.STEP and run.step in REDOABLE:
            assert run.step is not None
            book, more = _issue(book, run, subject, run.step, new_uuid)
            effects += (
                RecoveryEffects(notes=(f"{name}: {run.step} cut by a restart, run again",)) + more
            )
        elif run.phase is Phase.STEP:
            run = replace(
                run, phase=Phase.AWAITING_ALIVE, deadline=at + subject.bootup_time, cut=True
            )
            book = _with(book, run, name)
        elif run.phase is Phase.AWAITING_ALIVE and run.deadline is not None:
            # nobody watched while the daemon was down: the VM gets its boot time from now
            run = replace(run, deadline=max(run.deadline, at + subject.bootup_time))
            book = _with(book, run, name)
    return book, effects
