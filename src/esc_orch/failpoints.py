"""Named failpoints: exact places where a test can make the process die, off unless enabled.

Crash tests must stop the real daemon at a precise, durable point (right after an intent is
committed, right before an outcome is recorded, right after an event is logged) and check what
a restarted daemon does. Production code marks those places with :func:`hit`; nothing happens
there unless the point was enabled, and enabling one only arms it: no code is ever loaded.

Points (``POINTS``; an unknown name is refused):

``datastore.after-commit``
    the N-th change of running is durable (with its config events), no listener has seen it
    yet, so no run was started for it (``store/datastore.py``).
``actions.after-accept``
    the N-th vmAction/serviceAction START/STOP/REBOOT is accepted and its wanted state durable,
    its run not started (``daemon/actions.py``).
``lifecycle.after-intent``
    the N-th intent is durable, its VIM call not made yet (``store/journal.py``): the point
    "before the VIM call".
``lifecycle.between-calls``
    inside a step of several VIM calls (re-create: stop, delete, create; shared-disk move:
    stop, delete the source, create on the target; copy-disk move: stop, copy, start;
    redeploy: stop the source, create on the target, delete the source), the N-th call that
    is not the step's last is done (``reactor/execute.py``).
``lifecycle.before-outcome``
    the N-th step's VIM calls are done and nothing about its result is durable.
``lifecycle.after-outcome``
    the N-th outcome was handed to the store (held, to be written with the step's event).
``lifecycle.after-event``
    the N-th event the lifecycle logged is durable (with the record it came with), the
    reactor's and the actions' alike.
``lifecycle.before-commit``
    the N-th transaction of the lifecycle store's group commit that holds a write nobody waits
    for (a published event, which the reactor went on from) is written, not committed
    (``store/groupcommit.py``): a kill loses it and every write queued after it.

``recovery.after-book``
    the N-th write of the recovery book that carried events is durable (the book with the
    VM_RECOVERY_* events it produced and the records they came with,
    ``daemon/monitoring.py``): its steps not handed over yet.

``move.source-stopped``, ``move.source-removed``, ``move.disk-copied``, ``move.target-created``,
``move.fenced``
    the N-th move has just done that step on the VIM (``reactor/execute.py``,
    ``reactor/proving.py``): the source powered off; the source's definition removed (shared
    disk kept); the disk copied to the new storage, VM not started; the VM created on the
    target, the source not yet removed (redeploy); the source host fenced, outcome not durable.

Enable them in-process with :func:`enable`, or for a daemon started by a test with the
environment variable ``ESC_ORCH_FAILPOINTS=name=kill@N[,name=kill@N...]`` (read once by
``esc-orchd serve``). Actions, on the N-th hit: ``kill`` SIGKILLs the process (a crash);
``stop`` SIGSTOPs it (``name=stop@N``): the process freezes right there, so a test can change
the world at that exact step (power a host off, make it slow, change its password, fill its
storage) and then let the process go on with SIGCONT — the fault matrix does that.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

ENV = "ESC_ORCH_FAILPOINTS"
POINTS = frozenset(
    {
        "datastore.after-commit",
        "actions.after-accept",
        "lifecycle.after-intent",
        "lifecycle.between-calls",
        "lifecycle.before-outcome",
        "lifecycle.after-outcome",
        "lifecycle.after-event",
        "recovery.after-book",
        "lifecycle.before-commit",
        "move.source-stopped",
        "move.source-removed",
        "move.disk-copied",
        "move.target-created",
        "move.fenced",
    }
)


class FailAction(StrEnum):
    KILL = "kill"
    STOP = "stop"


@dataclass(slots=True)
class _Armed:
    action: FailAction
    left: int


_armed: dict[str, _Armed] = {}


class FailpointError(ValueError):
    """A failpoint specification that names no point or no action."""


def enable(name: str, *, action: FailAction = FailAction.KILL, at: int = 1) -> None:
    """Arm ``name``: its ``at``-th hit from now does ``action``."""
    if name not in POINTS:
        raise FailpointError(f"unknown failpoint {name!r} (known: {', '.join(sorted(POINTS))})")
    if at < 1:
        raise FailpointError(f"failpoint {name}: the hit count must be >= 1, not {at}")
    _armed[name] = _Armed(action=action, left=at)


def disable_all() -> None:
    _armed.clear()


def configure(spec: str) -> None:
    """Arm the points of ``name=kill@N[,name=kill@N...]`` (the syntax of :data:`ENV`)."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, rest = item.partition("=")
        action, _, count = rest.partition("@")
        if not sep or action not in set(FailAction) or not count.isdigit():
            raise FailpointError(f"{ENV}: expected name=kill@N or name=stop@N, not {item!r}")
        enable(name.strip(), action=FailAction(action), at=int(count))


def configure_from_env() -> None:
    """Arm what :data:`ENV` names (called once at daemon start-up)."""
    spec = os.environ.get(ENV)
    if spec:
        configure(spec)
        log.warning("failpoints armed: %s (a test setting, never for production)", spec)


def hit(name: str) -> None:
    """Mark failpoint ``name``: does nothing unless it is armed and this is its hit."""
    armed = _armed.get(name)
    if armed is None:
        return
    armed.left -= 1
    if armed.left > 0:
        return
    del _armed[name]
    log.warning("failpoint %s: %s", name, armed.action)
    if armed.action is FailAction.KILL:
        os.kill(os.getpid(), signal.SIGKILL)
    elif armed.action is FailAction.STOP:
        os.kill(os.getpid(), signal.SIGSTOP)  # returns once someone sends SIGCONT
