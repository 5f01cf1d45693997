"""Bench: time from a fault to VM_RECOVERY_INIT, against the window the payload sets.

The window is ``poll_frequency * metric_occurrences_false + recovery_wait_time``; the goal is
INIT within one poll period of it, and a dead host noticed at the first VIM check that fails
(then INIT after recovery_wait_time). Pings alone give INIT between ``window - poll`` and
``window`` after the fault (the first failing poll comes up to one period after it).
Two faults — the host SIGKILLed, the VM stopped behind
our back — each with the VIM's view on (checked every ``--vim-interval``) and off (pings
only). The seed's timings scaled by 1/15: polls every 1 s, 3 occurrences, recovery_wait_time
4 s (seed: 60 s), so the window is 7 s.

Runs inside a private network namespace (re-executes itself under ``unshare --net``) with the
live rig of :mod:`esc_orch.testing.monitor_rig`: an emulated CSP host whose guest network
puts the VM's address on ``lo``, ICMPPing, the CSP connector, the monitor and the recovery
coordinator. Bounded: 4 runs of at most 20 s.

Run: .venv/bin/python bench/monitor_detection.py [--vim-interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.reconcile.recovery import RecoveryAction
from esc_orch.testing.monitor_rig import Timing, live_rig
from esc_orch.testing.netns import INSIDE_MARKER, inside, netns_unavailable


async def until(predicate: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def one(root: Path, fault: str, *, vim_view: bool, timing: Timing) -> float | None:
    async with live_rig(root, RecoveryAction.REBOOT_ONLY, timing, vim_view=vim_view) as (w, sink):
        if not await until(lambda: sink.alive == [True], 20):
            raise RuntimeError("the VM never became alive")
        await asyncio.sleep(timing.poll * 1.5)  # fault at an arbitrary point of the poll cycle
        started = time.monotonic()
        if fault == "host killed":
            w.host.kill()
        else:
            status, _, _ = await w.host.request(
                "PATCH", f"/api/running/services/service/{w.identity.name}",
                body={"service": {"power": "off"}},
            )  # fmt: skip
            assert status in (200, 204), status
        if not await until(lambda: len(w.notices) >= 1, 20):
            return None
        return time.monotonic() - started


def inner(vim_interval: float) -> int:
    logging.getLogger("esc_orch").setLevel(logging.ERROR)  # the rig has no scripts_dir
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        print(f"refusing: not a sealed network namespace: {problems}", file=sys.stderr)
        return 3
    timing = Timing(poll=1.0, occurrences=3, wait=4.0, bootup=60.0, vim_interval=vim_interval)
    window = timing.poll * timing.occurrences + timing.wait
    print(
        f"poll {timing.poll:g} s x {timing.occurrences} + recovery_wait_time {timing.wait:g} s "
        f"= window {window:g} s; VIM view every {vim_interval:g} s"
    )
    print(f"{'fault':<13} {'VIM view':<9} {'to INIT s':>10} {'goal s':>16}")
    for fault in ("host killed", "VM stopped"):
        for vim_view in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                took = asyncio.run(one(Path(tmp), fault, vim_view=vim_view, timing=timing))
            goal = (
                f"<= {vim_interval + timing.wait + timing.poll:g}"
                if vim_view
                else f"{window - timing.poll:g}..{window:g}"
            )
            shown = "none" if took is None else f"{took:.2f}"
            print(f"{fault:<13} {'on' if vim_view else 'off':<9} {shown:>10} {goal:>16}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vim-interval", type=float, default=1.0)
    args = parser.parse_args()
    if not 0.1 <= args.vim_interval <= 5:
        parser.error("--vim-interval must be within 0.1..5 s (the run must stay bounded)")
    if inside():
        return inner(args.vim_interval)
    reason = netns_unavailable()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    return subprocess.run(
        ["unshare", "--net", sys.executable, *sys.argv],
        env={**os.environ, INSIDE_MARKER: "1"}, check=False, timeout=180,
    ).returncode  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
