"""Load and soak: N NETCONF sessions editing their own deployments while two subscribers listen.

What runs, all real processes on 127.0.0.1: three emulated CSP hosts and ``esc-orchd serve``
on a SQLite data directory (:class:`functional.lifecycle.support.Cluster`, monitoring off).
The generator is this process (one asyncio loop, raw asyncssh clients with base:1.0 framing,
:class:`nbsupport.rawclient.EomClient`, so the client side stays cheap on 2 cores):

* ``--sessions`` sessions (50), each owning deployment ``load-NN`` (the seed payload, one VM,
  a 1-vCPU flavor, spread over the three hosts), loop through a fixed cycle of operations —
  deploy, ``recovery_wait_time`` change, flavor change (a re-create), ``vmAction REBOOT``,
  ``recovery_wait_time`` change, undeploy — each sent, then awaited until its last event
  arrives, until ``--minutes`` have passed (each session then finishes the operation it is in);
* a *live* subscriber (``create-subscription`` to ``escEvent``) from before the first edit;
* a *replay* subscriber, started a quarter into the run with a ``startTime`` before the daemon
  started: it replays the whole log while the edits go on, then follows live;
* every ``--sample`` seconds the daemon's RSS, open fds and threads (``/proc/PID``).

After the run, with the edit sessions closed, the invariants (each failure is a problem line;
any problem makes the script exit 1):

* **no errors**: every RPC got ``<ok/>`` (also the ``vmAction``, sent as soon as the previous
  operation's service event arrived: never ``in-use``), every operation's last event came;
* **events**: the durable log (``event_log``, read from SQLite) is what each subscriber
  received — exactly once each, in log order (the live one from its subscription on, the replay
  one all of it) — and what a third subscriber replaying from the start with a ``stopTime``
  receives after the run; each deployment's events in the log are exactly its operations'
  events, in order, with their types;
* **state**: each deployment's opdata matches its last configuration (deployed: active, one
  alive VM; undeployed: absent); on the hosts, exactly one VM per deployed deployment, on its
  host, powered on, with its flavor's memory; no other VM; no disk without its VM;
* **quiet**: no ERROR or CRITICAL line and no traceback in the daemon's log;
* **flat**: after a warm-up (the first quarter of the run), the largest RSS of the last third
  of the samples is within ``--rss-slack`` (10 %) of the largest of the first third, and the
  same for fds (within ``--fd-slack``, 10 %, + 4); within ``FD_RETURN_S`` after the sessions
  are closed, no NETCONF session socket is left and every kind of fd is back to its count
  before they opened, the store's SQLite pool and the connectors' HTTP keep-alive pool
  within their bounds (:func:`reliability.loadkit.fds_not_returned`).

Run: ``.venv/bin/python tests/reliability/load.py [--sessions 50] [--minutes 2]``; the soak:
``--minutes 60``. ``tests/reliability/test_load_ci.py`` runs a short form under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: tests/ on the path, as pytest has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from functional.lifecycle.support import Cluster, connect, edit
from reliability.load_checks import (
    check_events,
    check_state,
    compare,
    durable_log,
    flatness,
    log_errors,
)
from reliability.loadkit import (
    DepState,
    Run,
    Sample,
    dep_name,
    drive,
    flavors_xml,
    host_services,
    replay_all,
)


@dataclass
class Report:
    figures: dict[str, float]
    problems: list[str]
    samples: list[Sample] = field(default_factory=list)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_load(
    root: Path,
    *,
    sessions: int,
    seconds: float,
    every: float = 2.0,
    rss_slack: float = 0.10,
    fd_slack: float = 0.10,
) -> Report:
    """One load run under ``root`` (see the module docstring); its figures and problems."""
    before = datetime.now(UTC) - timedelta(minutes=1)
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root)
    cluster.config.write_text(
        cluster.config.read_text() + f"[limits]\nmax_sessions = {sessions + 16}\n"
    )
    run = Run(
        sessions=sessions,
        seconds=seconds,
        deps=[DepState(index=i) for i in range(sessions)],
        inbox={dep_name(i): asyncio.Queue() for i in range(sessions)},
    )
    load_before = os.getloadavg()
    try:
        cluster.start_hosts()
        cluster.start_daemon()
        with connect(cluster) as m:
            edit(m, f"<config>{cluster.connectors_xml()}{flavors_xml()}</config>")
        assert cluster.daemon is not None
        began = time.monotonic()

        async def everything() -> tuple[list[tuple[int, bytes]], bool, dict[str, Any]]:
            await drive(run, cluster, every=every, before=before)
            replayed, complete = await replay_all(cluster.daemon.port, start=before)  # type: ignore[union-attr]
            return replayed, complete, await host_services(cluster)

        replayed, complete, services = asyncio.run(everything())
        wall = time.monotonic() - began
        log = durable_log(cluster)
        problems = list(run.errors)
        problems += check_events(run, log)
        problems += compare("replay after the run", replayed, [(t, c) for t, c, _, _ in log])
        if not complete:
            problems.append("replay after the run: no notificationComplete")
        problems += check_state(cluster, run, services)
        figures, flat = flatness(run, rss_slack=rss_slack, fd_slack=fd_slack)
        problems += flat
    finally:
        cluster.close()
    assert cluster.daemon is not None
    problems += log_errors(cluster.daemon.log())
    operations = len(run.op_latencies)
    figures = {
        "sessions": sessions,
        "minutes": seconds / 60,
        "wall_s": wall,
        "rpcs": run.edits,
        "rpcs_per_s": run.edits / seconds,
        "operations_done": operations,
        "rpc_p50_ms": _quantile(run.rpc_latencies, 0.5) * 1000,
        "rpc_p90_ms": _quantile(run.rpc_latencies, 0.9) * 1000,
        "rpc_max_ms": max(run.rpc_latencies, default=float("nan")) * 1000,
        "operation_p50_s": _quantile(run.op_latencies, 0.5),
        "operation_p90_s": _quantile(run.op_latencies, 0.9),
        "events_logged": len(log),
        "events_live": len(run.live),
        "events_replay": len(run.replay),
        "events_replayed_after": len(replayed),
        **figures,
        "samples": len(run.samples),
        "loadavg_1m_before": load_before[0],
        "loadavg_1m_after": os.getloadavg()[0],
        "errors": len(run.errors),
    }
    return Report(figures=figures, problems=problems, samples=run.samples)


def print_report(report: Report) -> None:
    width = max(len(k) for k in report.figures)
    for key, value in report.figures.items():
        text = f"{value:.2f}" if isinstance(value, float) and not value.is_integer() else value
        if isinstance(text, float):
            text = int(text)
        print(f"{key:<{width}}  {text}")
    if report.problems:
        print(f"\n{len(report.problems)} invariant(s) failed:")
        for line in report.problems[:50]:
            print(f"  - {line}")
    else:
        print("\nall invariants held")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--rss-slack", type=float, default=0.10)
    parser.add_argument("--fd-slack", type=float, default=0.10)
    parser.add_argument("--keep", type=Path, help="run under this directory and keep it")
    parser.add_argument("--samples-csv", type=Path, help="write the samples here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        report = run_load(
            root,
            sessions=args.sessions,
            seconds=args.minutes * 60,
            every=args.sample,
            rss_slack=args.rss_slack,
            fd_slack=args.fd_slack,
        )
    if args.samples_csv is not None:
        lines = ["t_s,rss_kb,fds,threads"]
        lines += [f"{s.t:.1f},{s.rss_kb},{s.fds},{s.threads}" for s in report.samples]
        args.samples_csv.write_text("\n".join(lines) + "\n")
    print_report(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
