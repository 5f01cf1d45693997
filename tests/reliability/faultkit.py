"""One fault trial: freeze the real daemon at a step, break the emulated world, let it go on.

A trial runs on a fresh three-host emulated cluster (the crash matrix's
:class:`functional.lifecycle.support.Cluster`, each host with a fault file and storages of a
known size) and a fresh daemon data directory:

1. a clean daemon configures the VIM connectors and brings deployment ``dep`` to the
   operation's starting point (the crash matrix's operations, :mod:`reliability.crashkit`),
   then stops;
2. a daemon started with ``ESC_ORCH_FAILPOINTS=<point>=stop@1`` is sent the operation and
   freezes itself (SIGSTOP) at that step; the fault is injected while it is frozen, then the
   daemon is let go (SIGCONT). A point the operation never reaches is "n/a";
3. the fault lasts :data:`HOLD_S` seconds of the daemon's own retrying, then clears (the host is
   started again or resumed, the link is fast again, the password is back, the space is freed);
4. the world must then reach the operation's final state by itself (``pass``) within
   :data:`SELF_S`, or after one re-arm, ``eo:recheck-vim-connector`` of every connector
   (``pass+r``: the run had given up visibly, and the documented remedy re-armed it).

The faults are real behaviours of the emulator (docs/csp-emulator.md), never mocks:

* ``host-kill``: CSP-1 (where the VM runs) powered off (SIGKILL), started again at clear;
* ``host-stop``: CSP-1 hangs (SIGSTOP: API silent, disk locks held), SIGCONT at clear;
* ``latency``: every host answers 1.5 s late (their fault file);
* ``5xx``: every host answers half its requests 503 (their fault file);
* ``auth``: every host's password is changed (401 from then on), restored at clear;
* ``storage-full``: another tenant's volume fills the gluster volume and every host's local
  storage (a new disk is refused 409 ``resource-denied`` ``disk-space``), removed at clear.

Invariants, checked on what is durable and real (:func:`reliability.crashkit.check_world`):
exactly one VM per desired instance across all hosts, powered as wanted, on the desired host,
no other VM of ``dep`` and no disk without its VM; opdata's state as desired; and every
FAILURE event of ``dep`` logged during the trial names the real cause (the sentence of
``model/failure.describe`` for the fault's cause, :attr:`Fault.cause`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch import failpoints
from functional.lifecycle.support import HOSTS, Cluster, connect, edit
from reliability.crashkit import (
    OPERATIONS,
    Operation,
    Trial,
    check_world,
    last_event_id,
    logged,
)

#: How long the fault lasts once the daemon goes on (its retries give up well before).
HOLD_S = 4.0
#: After the fault clears: how long the operation has to finish by itself, then after a re-arm.
SELF_S = 25.0
REARM_S = 35.0
#: How long an armed daemon has to reach its step.
REACH_S = 30.0
STORAGE_GB = 40
EO_NS = "urn:esc-orch:yang:esc-orch"


# ---------------------------------------------------------------------- faults


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fault_file(cluster: Cluster, name: str) -> Path:
    return cluster.hosts[name].root / f"{name}.faults.json"


def _all_faults(cluster: Cluster, doc: dict[str, float] | None) -> None:
    for name in cluster.hosts:
        _write(fault_file(cluster, name), "" if doc is None else json.dumps(doc))


def _passwords(cluster: Cluster, *, rotated: bool) -> None:
    for host in cluster.hosts.values():
        _write(host.password_file, ("rotated-" if rotated else "") + host.password + "\n")


def _fillers(cluster: Cluster) -> list[Path]:
    first = next(iter(cluster.hosts.values()))
    return [first.gluster_dir / "other-tenant.img"] + [
        h.local_dir / "other-tenant.img" for h in cluster.hosts.values()
    ]


def _fill(cluster: Cluster) -> None:
    for path in _fillers(cluster):
        path.touch()
        os.truncate(path, STORAGE_GB << 30)  # sparse: costs nothing real


def _unfill(cluster: Cluster) -> None:
    for path in _fillers(cluster):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Cluster], None]
    clear: Callable[[Cluster], None]
    #: What a FAILURE's sentence must say (``None``: no FAILURE is acceptable at all).
    cause: str | None
    doc: str


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "host-kill",
            lambda c: c.hosts["CSP-1"].kill(),
            lambda c: c.hosts["CSP-1"].start(),
            r"CSP-1 is unreachable|on VIM connector CSP-1 still failed after \d+ tries"
            r"|CSP-1 is unreachable and may still be running it",
            "CSP-1 powered off (SIGKILL), started again",
        ),
        Fault(
            "host-stop",
            lambda c: c.hosts["CSP-1"].pause(),
            lambda c: c.hosts["CSP-1"].resume(),
            r"CSP-1 is unreachable|on VIM connector CSP-1 still failed after \d+ tries",
            "CSP-1 hangs (SIGSTOP), then SIGCONT",
        ),
        Fault(
            "latency",
            lambda c: _all_faults(c, {"latency_ms": 1500}),
            lambda c: _all_faults(c, None),
            None,
            "every host answers 1.5 s late",
        ),
        Fault(
            "5xx",
            lambda c: _all_faults(c, {"error_rate": 0.5}),
            lambda c: _all_faults(c, None),
            r"still failed after \d+ tries \(.*HTTP 503",
            "every host answers half its requests 503",
        ),
        Fault(
            "auth",
            lambda c: _passwords(c, rotated=True),
            lambda c: _passwords(c, rotated=False),
            r"rejected its credentials",
            "every host's password changed (401), then restored",
        ),
        Fault(
            "storage-full",
            _fill,
            _unfill,
            r"not enough capacity \(.*disk space",
            "gluster and every local storage full (409 disk-space), then freed",
        ),
    )
}


# ---------------------------------------------------------------------- the trial


@dataclass
class FaultResult:
    operation: str
    fault: str
    point: str
    reached: bool = False
    rearmed: bool = False
    problems: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cell(self) -> str:
        if not self.reached:
            return "n/a"
        if self.problems:
            return "FAIL"
        return "pass+r" if self.rearmed else "pass"


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _wait_stopped(cluster: Cluster, op: Operation, trial: Trial, since: int) -> bool:
    """Wait until the armed daemon froze at its step (True) or finished without it (False)."""
    assert cluster.daemon is not None and cluster.daemon.proc is not None
    pid = cluster.daemon.proc.pid
    deadline = time.monotonic() + REACH_S
    last = op.events[-1]
    while time.monotonic() < deadline:
        state = _proc_state(pid)
        if state == "T":
            return True
        if state in {"gone", "Z"}:
            raise RuntimeError("the armed daemon exited before its step")
        got = [_short(e) for _, e in logged(trial, since=since)]
        if got.count(last) >= op.events.count(last):
            time.sleep(1.0)
            return _proc_state(pid) == "T"
        time.sleep(0.05)
    return False


def _short(event: Any) -> str:
    from functional.lifecycle.support import short  # noqa: PLC0415

    return str(short(event))


def recheck_all(cluster: Cluster) -> None:
    """``eo:recheck-vim-connector`` of every connector: the documented re-arm."""
    with connect(cluster) as m:
        for name in HOSTS:
            op = etree.Element(f"{{{EO_NS}}}recheck-vim-connector", nsmap={None: EO_NS})  # type: ignore[dict-item]
            etree.SubElement(op, f"{{{EO_NS}}}vim_id").text = name
            m.dispatch(op)


def _settled(trial: Trial, op: Operation, within: float) -> list[str]:
    """Poll the world until it holds (``[]``) or ``within`` passes: the last problems."""
    deadline = time.monotonic() + within
    problems = ["never checked"]
    while time.monotonic() < deadline:
        try:
            problems = check_world(trial, op)
        except Exception as exc:  # the daemon busy or a host coming back: try again
            problems = [f"{type(exc).__name__}: {exc}"]
        if not problems:
            return []
        time.sleep(1.0)
    return problems


def _cause_problems(trial: Trial, fault: Fault, since: int) -> tuple[list[str], list[str]]:
    """(the events of ``dep`` since ``since``; FAILUREs that do not name the fault's cause)."""
    events = logged(trial, since=since)
    kinds = [_short(e) for _, e in events]
    wrong = []
    for _, event in events:
        if str(event.status) == "SUCCESS":
            continue
        message = event.status_message or ""
        if fault.cause is None or not re.search(fault.cause, message):
            wrong.append(f"{_short(event)} names the wrong cause: {message!r}")
    return kinds, wrong


def prepare_hosts(cluster: Cluster) -> None:
    for name, host in cluster.hosts.items():
        host.extra_args = [
            "--fault-file", str(fault_file(cluster, name)),
            "--local-capacity-gb", str(STORAGE_GB), "--gluster-capacity-gb", str(STORAGE_GB),
        ]  # fmt: skip


def run_fault_trial(root: Path, operation: str, fault_name: str, point: str) -> FaultResult:
    """``operation`` frozen at ``point`` (``name@N``), ``fault_name`` injected, then cleared."""
    started = time.monotonic()
    op, fault = OPERATIONS[operation], FAULTS[fault_name]
    name, _, nth = point.partition("@")
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root)
    trial = Trial(cluster=cluster)
    result = FaultResult(operation=operation, fault=fault_name, point=point)
    injected = cleared = False
    try:
        prepare_hosts(cluster)
        cluster.start_hosts()
        cluster.start_daemon()
        with connect(cluster) as m:
            edit(m, f"<config>{cluster.connectors_xml()}</config>")
        op.prepare(trial)
        cluster.daemon.stop()  # type: ignore[union-attr]
        since = last_event_id(trial)
        cluster.start_daemon(env={failpoints.ENV: f"{name}=stop@{nth or 1}"})
        assert cluster.daemon is not None and cluster.daemon.proc is not None
        acting = threading.Thread(target=_act, args=(op, trial), daemon=True)
        acting.start()
        if not _wait_stopped(cluster, op, trial, since):
            acting.join(timeout=30)
            return result
        result.reached = True
        fault.inject(cluster)
        injected = True
        os.killpg(cluster.daemon.proc.pid, signal.SIGCONT)
        time.sleep(HOLD_S)
        fault.clear(cluster)
        cleared = True
        acting.join(timeout=60)
        problems = _settled(trial, op, SELF_S)
        if problems:
            result.rearmed = True
            recheck_all(cluster)
            problems = _settled(trial, op, REARM_S)
        result.problems += problems
        result.events, wrong = _cause_problems(trial, fault, since)
        result.problems += wrong
        if cluster.daemon.proc.poll() is not None:
            result.problems.append(f"the daemon exited ({cluster.daemon.proc.returncode})")
    except Exception as exc:  # a trial that breaks is a failed cell, with why
        result.reached = True
        result.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if injected and not cleared:
            with contextlib.suppress(Exception):
                fault.clear(cluster)
        if cluster.daemon is not None and cluster.daemon.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.daemon.proc.pid, signal.SIGCONT)
        cluster.close()
        result.seconds = time.monotonic() - started
    return result


def _act(op: Operation, trial: Trial) -> None:
    with contextlib.suppress(Exception):  # the reply may come late or never (frozen daemon)
        op.act(trial)
