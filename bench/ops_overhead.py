"""Bench: what operating features cost: the schema check at open, recording a metric, a scrape.

Prints the time to open a fresh SQLite datastore (created at the head revision and stamped,
alembic imported), to reopen it (the schema check alone), the cost of one
``metrics.rpc_handled`` call (done once per NETCONF RPC) and of rendering one /metrics body.

Run: .venv/bin/python bench/ops_overhead.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
import timeit
from pathlib import Path

from prometheus_client import generate_latest

from esc_orch import metrics
from esc_orch.store.datastore import SqlDatastore


def _open_ms(data_dir: Path) -> float:
    started = time.perf_counter()
    SqlDatastore.open(data_dir=data_dir).close()
    return 1000 * (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="esc-bench-") as tmp:
        first = _open_ms(Path(tmp) / "first")  # includes importing alembic's machinery
        fresh = [_open_ms(Path(tmp) / f"fresh-{i}") for i in range(10)]
        again = [_open_ms(Path(tmp) / "fresh-0") for _ in range(20)]
    print(f"first open of a fresh SQLite store (imports + create + stamp): {first:.1f} ms")
    print(f"open of a fresh SQLite store, median of 10: {statistics.median(fresh):.1f} ms")
    print(f"reopen at the head (schema check), median of 20: {statistics.median(again):.1f} ms")
    n = 100_000
    seconds = timeit.timeit(
        lambda: metrics.rpc_handled(operation="get-config", ok=True, seconds=0.001), number=n
    )
    print(f"metrics.rpc_handled: {seconds / n * 1e6:.2f} us per call")
    scrape = timeit.timeit(lambda: generate_latest(metrics.REGISTRY), number=200) / 200
    print(f"one /metrics body (generate_latest): {scrape * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
