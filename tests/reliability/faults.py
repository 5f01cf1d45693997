"""The fault matrix: every operation frozen at each step, a fault injected there, then cleared.

Rows are operations (:data:`OPERATIONS`, from the crash matrix), columns a fault at a step
(each fault of :data:`FAULTS` at each step of :data:`STEPS`); a cell is one trial
(:func:`reliability.faultkit.run_fault_trial`):
``pass`` when the world reached the operation's final state by itself once the fault cleared
and every FAILURE named the real cause, ``pass+r`` when that took the documented re-arm
(``eo:recheck-vim-connector``) after the run gave up visibly, ``FAIL`` otherwise, ``n/a`` when
the operation never reaches the step.

    .venv/bin/python tests/reliability/faults.py [--only OP,OP] [--faults F,F] [--steps S,S]
        [--markdown FILE]

``tests/reliability/test_fault_matrix.py`` runs a few cells under pytest (CI), all with
``ESC_ORCH_FAULT_MATRIX=full``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: tests/ on the path, as pytest has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reliability.crashkit import OPERATIONS as CRASH_OPERATIONS
from reliability.faultkit import FAULTS, FaultResult, run_fault_trial

OPERATIONS = (
    "deploy",
    "update-flavor",
    "update-interface",
    "update-image",
    "update-locator",
    "move-redeploy",
    "undeploy",
    "vmAction-STOP",
    "serviceAction-REBOOT",
)
MULTI_CALL = (
    "update-flavor",
    "update-interface",
    "update-image",
    "update-locator",
    "move-redeploy",
)
ACTIONS = tuple(op for op in OPERATIONS if "Action-" in op)

#: step name -> the failpoint the daemon freezes at (see esc_orch/failpoints.py).
STEPS = {
    "accepted": "the edit committed / the action accepted, no VIM call made",
    "after-intent": "the first step's intent durable, its VIM call not made",
    "between-calls": "re-create or move: its first VIM call (the stop) done",
}
DEFAULT_STEPS = ("after-intent", "between-calls")

#: The bounded form run by CI with the normal suite: one cell of each fault.
CI_CELLS = (
    ("deploy", "host-kill", "after-intent"),
    ("update-flavor", "auth", "between-calls"),
    ("deploy", "storage-full", "after-intent"),
    ("vmAction-STOP", "5xx", "after-intent"),
)


def point(operation: str, step: str) -> str | None:
    """The failpoint of ``step`` in ``operation`` (``None``: the step does not exist there)."""
    if step == "accepted":
        return "actions.after-accept@1" if operation in ACTIONS else "datastore.after-commit@1"
    if step == "after-intent":
        return "lifecycle.after-intent@1"
    if step == "between-calls":
        return "lifecycle.between-calls@1" if operation in MULTI_CALL else None
    raise ValueError(step)


def columns(faults: tuple[str, ...], steps: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(f, s) for f in faults for s in steps]


def run_cell(root: Path, operation: str, fault: str, step: str) -> FaultResult | None:
    spec = point(operation, step)
    if spec is None:
        return None
    return run_fault_trial(root, operation, fault, spec)


def render(
    results: dict[tuple[str, str, str], FaultResult | None],
    ops: list[str],
    cols: list[tuple[str, str]],
    *,
    markdown: bool,
) -> str:
    names = [f"{f}@{s}" for f, s in cols]
    rows = []
    for op in ops:
        row = []
        for f, s in cols:
            r = results.get((op, f, s))
            row.append("n/a" if r is None else r.cell)
        rows.append(row)
    if markdown:
        out = ["| operation | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        out += [f"| {op} | " + " | ".join(row) + " |" for op, row in zip(ops, rows, strict=True)]
        return "\n".join(out)
    width = max(len(op) for op in ops)
    cw = max(8, *(len(n) for n in names))
    out = [" " * width + "  " + " ".join(f"{n:>{cw}}" for n in names)]
    out += [
        f"{op:<{width}}  " + " ".join(f"{cell:>{cw}}" for cell in row)
        for op, row in zip(ops, rows, strict=True)
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated operations (default: all)")
    parser.add_argument("--faults", default="", help=f"comma-separated of {', '.join(FAULTS)}")
    parser.add_argument(
        "--steps", default=",".join(DEFAULT_STEPS), help=f"comma-separated of {', '.join(STEPS)}"
    )
    parser.add_argument("--markdown", type=Path, help="also write the matrix as Markdown here")
    args = parser.parse_args(argv)
    ops = [op for op in OPERATIONS if not args.only or op in args.only.split(",")]
    faults = tuple(f for f in FAULTS if not args.faults or f in args.faults.split(","))
    steps = tuple(s for s in STEPS if s in args.steps.split(","))
    assert all(op in CRASH_OPERATIONS for op in ops)
    cols = columns(faults, steps)
    results: dict[tuple[str, str, str], FaultResult | None] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp:
        n = 0
        for op in ops:
            for fault, step in cols:
                n += 1
                cell_root = Path(tmp) / f"cell{n}"
                result = run_cell(cell_root, op, fault, step)
                shutil.rmtree(cell_root, ignore_errors=True)
                results[(op, fault, step)] = result
                if result is not None:
                    why = f" {result.problems}" if result.problems else ""
                    print(
                        f"{op} x {fault} @ {step}: {result.cell} ({result.seconds:.0f} s)"
                        f" events={result.events}{why}",
                        flush=True,
                    )
    counts = {"pass": 0, "pass+r": 0, "FAIL": 0, "n/a": 0}
    for result in results.values():
        counts["n/a" if result is None else result.cell] += 1
    summary = (
        f"{counts['pass']} pass, {counts['pass+r']} pass after re-arm, {counts['FAIL']} fail, "
        f"{counts['n/a']} n/a ({time.monotonic() - started:.0f} s)"
    )
    print(render(results, ops, cols, markdown=False))
    print(summary)
    if args.markdown is not None:
        text = render(results, ops, cols, markdown=True) + "\n\n" + summary + "\n"
        args.markdown.write_text(text)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
