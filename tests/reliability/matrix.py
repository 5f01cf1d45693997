"""The crash-point matrix: every operation killed at every failpoint it reaches, restarted.

Rows are the operations of :data:`reliability.crashkit.OPERATIONS`, columns the crash points
(:data:`COLUMNS`): a cell is one trial (:func:`reliability.crashkit.run_trial`), ``pass`` when
every invariant held after the restart, ``FAIL`` when one did not, ``n/a`` when the operation
never reaches that point (or the point does not apply to it, e.g. no VIM call between two
others in a power change). ``none`` is the same operation without a crash: it proves the
expected events and final state the other cells are held to.

Run the whole matrix (about 10 s a cell on a 2-core machine) and print it::

    .venv/bin/python tests/reliability/matrix.py [--only OP[,OP]] [--markdown FILE]

``tests/reliability/test_crash_matrix.py`` runs the same cells under pytest: a representative
subset by default (CI), all of them with ``ESC_ORCH_CRASH_MATRIX=full``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: tests/ on the path, as pytest has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.testing.netns import INSIDE_MARKER, netns_unavailable
from reliability.crashkit import MONITORED, OPERATIONS, RECOVERIES, Operation, Result, run_trial

RECREATES = ("update-flavor", "update-interface", "update-image")
MOVES = ("update-locator", "move-copy-disk", "move-redeploy")
ACTIONS = tuple(name for name in OPERATIONS if "Action-" in name)
EDITS = tuple(name for name in OPERATIONS if name not in ACTIONS)


@dataclass(frozen=True)
class Column:
    """A crash point: the failpoint(s) armed for it, and where it applies."""

    name: str
    doc: str

    def points(self, op: Operation) -> tuple[str, str | None] | None:
        """(failpoint spec, spec of a second crash after the restart) or None: n/a."""
        stepping = op.name != "update-no-vm-change"
        multi_call = op.name in RECREATES + MOVES
        match self.name:
            case "none":
                return ("none", None)
            case "accepted":
                point = "actions.after-accept" if op.name in ACTIONS else "datastore.after-commit"
                return (f"{point}=kill@1", None)
            case "after-intent":
                return ("lifecycle.after-intent=kill@1", None) if stepping else None
            case "between-calls-1" | "between-calls-2":
                n = self.name[-1]
                return (f"lifecycle.between-calls=kill@{n}", None) if multi_call else None
            case "before-outcome":
                return ("lifecycle.before-outcome=kill@1", None) if stepping else None
            case "after-outcome":
                return ("lifecycle.after-outcome=kill@1", None) if stepping else None
            case "after-event-1" | "after-event-2" | "after-event-3":
                n = int(self.name[-1])
                return (f"lifecycle.after-event=kill@{n}", None) if n <= len(op.events) else None
            case "recovery-book-1" | "recovery-book-2" | "recovery-book-3":
                if not op.name.startswith("recovery-"):
                    return None
                return (f"recovery.after-book=kill@{self.name[-1]}", None)
            case "twice":
                if not stepping:
                    return None
                return ("lifecycle.before-outcome=kill@1", "lifecycle.after-outcome=kill@1")
        raise ValueError(self.name)


COLUMNS = (
    Column("none", "no crash: the reference the other cells are held to"),
    Column("accepted", "the edit committed (or the action accepted), no run started"),
    Column("after-intent", "the step's intent durable, its VIM call not made"),
    Column("between-calls-1", "re-create or move: the first of its VIM calls done (a stop)"),
    Column(
        "between-calls-2",
        "re-create: the delete done; shared-disk move: the source deleted; copy-disk: the"
        " copy done; redeploy: the copy created on the target, the source not deleted",
    ),
    Column("before-outcome", "the step's VIM calls done, nothing of its result durable"),
    Column("after-outcome", "the outcome handed to the store (held for the event)"),
    Column("after-event-1", "the operation's first event durable"),
    Column("after-event-2", "its second event durable"),
    Column("after-event-3", "its third event durable"),
    Column("recovery-book-1", "recovery: its first book write with events durable (INIT)"),
    Column("recovery-book-2", "recovery: its second (the step's event)"),
    Column("recovery-book-3", "recovery: its third (COMPLETE)"),
    Column(
        "twice",
        "VIM call done, killed; killed again as the restart closes the intent; restarted",
    ),
)

#: The representative subset run by CI with the normal suite (the defects of issue 14 #6 run
#: from test_crash_events.py besides): one cell of each kind of crash point.
CI_CELLS = (
    ("deploy", "after-event-2"),
    ("update-locator", "between-calls-2"),
    # found by the matrix: a VM_STARTED too when a copy-disk move was cut after its stop
    ("move-copy-disk", "between-calls-1"),
    ("serviceAction-REBOOT", "after-event-1"),
)


def cells(only: tuple[str, ...] = ()) -> list[tuple[str, Column]]:
    return [(op, col) for op in OPERATIONS if not only or op in only for col in COLUMNS]


def run_cell(root: Path, operation: str, column: Column) -> Result | None:
    """The trial of one cell under ``root`` (``None``: the point does not apply)."""
    points = column.points(OPERATIONS[operation])
    if points is None:
        return None
    point, again = points
    return run_trial(root, operation, point, again=again)


def render(results: dict[tuple[str, str], Result | None], *, markdown: bool) -> str:
    ops = list(dict.fromkeys(op for op, _ in results))
    cols = [c.name for c in COLUMNS]
    rows = []
    for op in ops:
        row = []
        for col in cols:
            result = results.get((op, col)) if (op, col) in results else None
            row.append("n/a" if result is None else result.cell)
        rows.append(row)
    if markdown:
        out = ["| operation | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        out += [f"| {op} | " + " | ".join(row) + " |" for op, row in zip(ops, rows, strict=True)]
        return "\n".join(out)
    width = max(len(op) for op in ops)
    out = [" " * width + "  " + " ".join(f"{c[:15]:>15}" for c in cols)]
    out += [
        f"{op:<{width}}  " + " ".join(f"{cell:>15}" for cell in row)
        for op, row in zip(ops, rows, strict=True)
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated operations (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the matrix as Markdown here")
    parser.add_argument("--columns", default="", help="comma-separated columns (default: all)")
    parser.add_argument(
        "--recovery",
        action="store_true",
        help="the recovery rows: run inside a private network namespace made here "
        "(unshare --net; root), where the VMs' addresses answer on lo and are monitored",
    )
    args = parser.parse_args(argv)
    if args.recovery and not MONITORED:
        return in_private_namespace(sys.argv[1:] if argv is None else argv)
    only = tuple(filter(None, args.only.split(",")))
    if args.recovery and not only:
        only = tuple(op.name for op in RECOVERIES)
    if MONITORED and (problems := isolation_problems()):
        print(f"matrix: not a sealed namespace: {problems}", file=sys.stderr)
        return 2
    results: dict[tuple[str, str], Result | None] = {}
    failed = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-matrix-") as tmp:
        chosen = set(filter(None, args.columns.split(",")))
        for n, (op, col) in enumerate(cells(only)):
            if chosen and col.name not in chosen:
                continue
            t0 = time.monotonic()
            result = run_cell(Path(tmp) / f"cell{n}", op, col)
            shutil.rmtree(Path(tmp) / f"cell{n}", ignore_errors=True)
            results[(op, col.name)] = result
            if result is not None:
                status = result.cell
                failed += status == "FAIL"
                why = f" {result.problems}" if result.problems else ""
                print(f"{op} @ {col.name}: {status} ({time.monotonic() - t0:.0f} s){why}")
                sys.stdout.flush()
    counts = {"pass": 0, "FAIL": 0, "n/a": 0}
    for result in results.values():
        counts["n/a" if result is None else result.cell] += 1
    table = render(results, markdown=False)
    summary = (
        f"{counts['pass']} pass, {counts['FAIL']} fail, {counts['n/a']} n/a "
        f"({time.monotonic() - started:.0f} s)"
    )
    print(table)
    print(summary)
    if args.markdown is not None:
        args.markdown.write_text(render(results, markdown=True) + "\n\n" + summary + "\n")
    return 1 if failed else 0


def in_private_namespace(argv: list[str]) -> int:
    """Run this script again inside ``unshare --net`` (only ``lo``, up): the recovery rows."""
    reason = netns_unavailable()
    if reason is not None:
        print(f"matrix: cannot make a private network namespace: {reason}", file=sys.stderr)
        return 2
    script = 'ip link set lo up && exec "$0" "$@"'
    cmd = ["unshare", "--net", "sh", "-c", script, sys.executable, __file__, *argv]
    return subprocess.run(cmd, env={**os.environ, INSIDE_MARKER: "1"}, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
