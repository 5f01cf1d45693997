"""Profile: where esc-orchd spends its CPU on edit-config, by phase (py-spy on the daemon).

Why: the issue asks for the breakdown of one edit-config — parse, validate, apply, commit,
publish, reply — before and after the performance work. This starts ``esc-orchd serve``
(as ``netconf_latency.py`` does), seeds it the same way, samples the daemon with py-spy
(``pip install py-spy``; it needs ptrace, i.e. root or the same user) while one raw client
sends ``--requests`` edits of one kind, and attributes every sample to a phase by the
innermost frame of ours it passes through (see ``PHASES``). Prints milliseconds of CPU per
request by phase and the top functions, so a regression shows where it is.

Run: .venv/bin/python bench/profile_edit.py [--kind flavor|deployment|get] [--requests 300]
     [--sessions 10]   (each session its own deployment, as netconf_table.py's throughput row)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netconf_latency import GET_CONFIG, RawSession, edit_rpc, flavor_edit, payloads, seed
from netconf_servers import esc_orchd, settle

#: (phase, substrings of a py-spy frame "function (path:line)"), by priority: a sample
#: belongs to the first phase with a pattern matching any frame of its stack.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "publish (listeners, lifecycle, reactor)",
        (
            "._notify (",
            ".on_commit (",
            "daemon/lifecycle.py",
            "reactor/",
            "vim/",
            "store/journal.py",
            "vim_supervisor.py",
            "daemon/opdata.py",
        ),
    ),
    ("validate (libyang, structure, types)", ("model/validate.py", "check_edit ", "_validated")),
    ("commit (SQL write, fsync, event log)", ("._write (", "store/events.py", "_next_txid")),
    ("read (SQL load of touched units)", ("._load (", "._expand", "_referrers", "_view_rows")),
    ("apply (RFC 6241 edit, split/assemble)", ("model/edit.py", "model/units.py", "model/diff.py")),
    (
        "commit (SQL write, fsync, event log)",
        ("commit (sqlalchemy", "_commit_impl", "__exit__ (sqlalchemy"),
    ),
    ("parse (framing, XML, dispatch)", ("framing.py", "receive_data", "_handle_rpc")),
    (
        "reply (render, frame, SSH write)",
        ("render_reply", "build_reply", "send_messages", "write (esc"),
    ),
    ("get-config (assemble, mask, filter)", ("filters.py", "mask_secrets", "get_config")),
    ("other datastore work (copies, diff)", ("store/datastore.py", "store/image.py")),
    ("SSH transport (asyncssh)", ("asyncssh/",)),
    ("thread hand-off, asyncio", ("asyncio/", "threading.py", "concurrent/")),
)


#: Innermost frames that mean "waiting" (py-spy's idle heuristics keep them): not CPU.
IDLE_LEAVES = (
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py:81)",
    "wait (threading.py",
)


def phase_of(stack: list[str]) -> str:
    # py-spy names methods with their class ("EpollSelector.select (selectors.py:468)"):
    # match the leaf anywhere, or an idle loop is counted as busy asyncio work.
    if stack and any(leaf in stack[-1] for leaf in IDLE_LEAVES):
        return "idle (waiting: epoll, idle worker)"
    for phase, patterns in PHASES:
        if any(p in frame for frame in stack for p in patterns):
            return phase
    return "other"


def summarize(raw: Path, requests: int, rate: int) -> None:
    by_phase: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack_text.split(";") if f]
        # py-spy prefixes the thread ("thread (0x...)" / process): drop non-frames.
        frames = [f for f in frames if "(" in f and ".py" in f]
        total += count
        by_phase[phase_of(frames)] += count
        ours = [f for f in frames if "esc_orch" in f]
        by_function[(ours or frames or ["?"])[-1]] += count
        leaf[frames[-1] if frames else "?"] += count
    ms = 1000.0 / rate / requests
    busy = total - sum(c for p, c in by_phase.items() if p.startswith("idle"))
    print(f"\nsamples: {total} at {rate} Hz; busy (not idle) {busy * ms:.2f} ms per request\n")
    print(f"{'phase':<42} {'ms/request':>10} {'share':>7}")
    for phase, count in by_phase.most_common():
        print(f"{phase:<42} {count * ms:>10.2f} {count / max(total, 1):>7.1%}")
    print("\ntop innermost esc_orch frames:")
    for function, count in by_function.most_common(15):
        print(f"  {count * ms:7.3f} ms  {function[:110]}")
    print("\ntop innermost frames (any code):")
    for function, count in leaf.most_common(12):
        print(f"  {count * ms:7.3f} ms  {function[:110]}")


async def drive(endpoint: object, kind: str, requests: int, sessions: int = 1) -> float:
    """Send ``requests`` edits from each of ``sessions`` sessions at once (with more than
    one, each session edits its own deployment of the seed, as netconf_table.py's row)."""
    loads = payloads(0)
    opened = [await RawSession.open(endpoint) for _ in range(sessions)]  # type: ignore[arg-type]

    def op(s: int, i: int) -> bytes:
        if kind == "get":
            return GET_CONFIG
        if kind == "flavor":
            return edit_rpc(flavor_edit(i))
        vim = "CSP-2" if i % 2 == 0 else "CSP-1"
        if sessions == 1:
            return edit_rpc(loads.edit("name1", "dep", vim))
        return edit_rpc(loads.edit("bench", f"b{s:03d}", vim))

    async def run(s: int, first: int, count: int) -> None:
        for i in range(first, first + count):
            await opened[s].rpc(op(s, i))

    try:
        await asyncio.gather(*(run(s, 0, 10) for s in range(sessions)))
        start = time.perf_counter()
        await asyncio.gather(*(run(s, 10, requests) for s in range(sessions)))
        return time.perf_counter() - start
    finally:
        for session in opened:
            await session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("flavor", "deployment", "get"), default="deployment")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--extra", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=1, help="concurrent sessions")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw stacks in this file")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="profile-edit-") as tmp:
        work = Path(tmp)
        with esc_orchd(work) as endpoint:
            seed(endpoint, payloads(args.extra))
            print(f"settled after {settle(endpoint.pid):.1f} s (the lifecycle deploys the seed)")
            raw = work / "profile.txt"
            assert endpoint.pid is not None
            recorder = subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(endpoint.pid),
                    "-r",
                    str(args.rate),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    "--threads",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)
            wall = asyncio.run(drive(endpoint, args.kind, args.requests, args.sessions))
            recorder.send_signal(2)  # SIGINT: py-spy writes its output and exits
            _, err = recorder.communicate(timeout=30)
            total = args.requests * args.sessions
            print(
                f"{total} {args.kind} requests from {args.sessions} session(s), "
                f"{wall / total * 1e3:.2f} ms each"
            )
            if not raw.exists():
                print(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
                return 1
            summarize(raw, total, args.rate)
            if args.raw:
                shutil.copy(raw, args.raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
