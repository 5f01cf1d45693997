"""The monitor's memory as a plain value, so a restart causes no spurious recovery.

The recovery policy's book has its JSON here too (:func:`book_to_json`): persisted with the
events it produced, restored, then passed through :func:`~esc_orch.reconcile.recovery.resume`.

:class:`MonitorSnapshot` is what the lead persists through the store (as the JSON of
:func:`snapshot_to_json`) and hands back at start-up. :func:`restore_states` keeps the state of
every VM still watched with the same boot (``since``), and gives every VM that was not yet
alive a grace period — enough polls to see it alive — because the daemon was not polling
while it was down: its bootup_time may have run out unwatched. VMs seen for the first time
after a start get the same grace (a daemon upgraded from a version without snapshots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from esc_orch.monitor.decision import KpiState, VmMonitorState
from esc_orch.monitor.types import VimView, VmWatch
from esc_orch.reconcile.identity import VmIdentity
from esc_orch.reconcile.recovery import Phase, RecoveryBook, RecoveryRun, Step, TriggerCause


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSnapshot:
    taken_at: float
    vms: Mapping[str, VmMonitorState] = field(default_factory=dict)


def _state_json(state: VmMonitorState) -> dict[str, Any]:
    return {
        "since": state.since,
        "alive": state.alive,
        "ever_alive": state.ever_alive,
        "bootup_expired": state.bootup_expired,
        "grace_until": state.grace_until,
        "vim": None if state.vim is None else str(state.vim),
        "kpis": {name: asdict(k) for name, k in state.kpis.items()},
    }


def snapshot_to_json(snapshot: MonitorSnapshot) -> dict[str, Any]:
    return {
        "version": 1,
        "taken_at": snapshot.taken_at,
        "vms": {name: _state_json(s) for name, s in sorted(snapshot.vms.items())},
    }


def snapshot_from_json(data: Mapping[str, Any]) -> MonitorSnapshot:
    """Raises ``ValueError`` for a snapshot of another version or shape."""
    if data.get("version") != 1:
        raise ValueError(f"unknown monitor snapshot version {data.get('version')!r}")
    try:
        vms = {
            name: VmMonitorState(
                since=float(s["since"]),
                alive=bool(s["alive"]),
                ever_alive=bool(s["ever_alive"]),
                bootup_expired=bool(s["bootup_expired"]),
                grace_until=s.get("grace_until"),
                vim=None if s["vim"] is None else VimView(s["vim"]),
                kpis={k: KpiState(**v) for k, v in s["kpis"].items()},
            )
            for name, s in data["vms"].items()
        }
        return MonitorSnapshot(taken_at=float(data["taken_at"]), vms=vms)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed monitor snapshot: {exc}") from None


def grace_for(watch: VmWatch) -> float:
    """Seconds of polling that can show the VM alive: the slowest KPI's true window, + 1 poll."""
    return max((k.poll_seconds * (k.occurrences_true + 1) for k in watch.kpis), default=0.0)


def restore_states(
    snapshot: MonitorSnapshot | None, *, now: float, watches: Sequence[VmWatch]
) -> dict[str, VmMonitorState]:
    """The states to start from: the snapshot's, where still valid, with a boot grace."""
    saved = snapshot.vms if snapshot is not None else {}
    out: dict[str, VmMonitorState] = {}
    for watch in watches:
        state = saved.get(watch.vm_name)
        if state is None or state.since != watch.since:
            state = VmMonitorState(since=watch.since)
        if not state.ever_alive and not state.bootup_expired and watch.since < now:
            grace = now + grace_for(watch)
            state = VmMonitorState(
                since=state.since, alive=state.alive, ever_alive=state.ever_alive,
                bootup_expired=False, grace_until=max(grace, state.grace_until or 0.0),
                vim=state.vim, kpis=state.kpis,
            )  # fmt: skip
        out[watch.vm_name] = state
    return out


def forget_conditions(snapshot: MonitorSnapshot, names: Sequence[str]) -> MonitorSnapshot:
    """The snapshot with the KPI conditions of the VMs ``names`` unknown again.

    For VMs whose recovery resumes after a restart awaiting their VM alive: the step cut by the
    crash may have started or rebooted them after the snapshot was taken, so a KPI the
    snapshot holds TRUE (from before the failure) must not hide the TRUE edge that tells the
    recovery the VM is back (without it the recovery timed out on a VM that answered).
    """
    vms = dict(snapshot.vms)
    for name in names:
        state = vms.get(name)
        if state is None:
            continue
        kpis = {k: KpiState(last_value=v.last_value, last_poll_at=v.last_poll_at)
                for k, v in state.kpis.items()}  # fmt: skip
        vms[name] = VmMonitorState(
            since=state.since, alive=False, ever_alive=state.ever_alive,
            bootup_expired=state.bootup_expired, grace_until=state.grace_until,
            vim=state.vim, kpis=kpis,
        )  # fmt: skip
    return MonitorSnapshot(taken_at=snapshot.taken_at, vms=vms)


# ------------------------------------------------------------------------------ recovery book


def _identity_json(vm: VmIdentity) -> dict[str, Any]:
    return {"deployment": vm.deployment, "group": vm.group, "index": vm.index,
            "uuid": vm.uuid, "vmid": vm.vmid}  # fmt: skip


def _run_json(run: RecoveryRun) -> dict[str, Any]:
    return {
        "cause": str(run.cause), "phase": str(run.phase), "source": _identity_json(run.source),
        "current": _identity_json(run.current), "stage": run.stage,
        "step": None if run.step is None else str(run.step), "seq": run.seq,
        "act_at": run.act_at, "deadline": run.deadline, "announced": run.announced,
        "failures": list(run.failures), "cut": run.cut,
    }  # fmt: skip


def book_to_json(book: RecoveryBook) -> dict[str, Any]:
    return {
        "version": 1,
        "next_seq": book.next_seq,
        "failed": sorted(book.failed),
        "runs": {name: _run_json(run) for name, run in sorted(book.runs.items())},
    }


def book_from_json(data: Mapping[str, Any]) -> RecoveryBook:
    """Raises ``ValueError`` for a book of another version or shape."""
    if data.get("version") != 1:
        raise ValueError(f"unknown recovery book version {data.get('version')!r}")
    try:
        runs = {
            name: RecoveryRun(
                vm_name=name,
                cause=TriggerCause(r["cause"]),
                phase=Phase(r["phase"]),
                source=VmIdentity(**r["source"]),
                current=VmIdentity(**r["current"]),
                stage=int(r["stage"]),
                step=None if r["step"] is None else Step(r["step"]),
                seq=int(r["seq"]),
                act_at=float(r["act_at"]),
                deadline=r["deadline"],
                announced=bool(r["announced"]),
                failures=tuple(r["failures"]),
                cut=bool(r.get("cut", False)),  # absent in books written before it existed
            )
            for name, r in data["runs"].items()
        }
        return RecoveryBook(
            runs=runs, failed=frozenset(data["failed"]), next_seq=int(data["next_seq"])
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed recovery book: {exc}") from None
