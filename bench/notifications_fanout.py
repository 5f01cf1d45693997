"""Fan-out of escEvent notifications: 100 subscribers, 1,000 events (defaults), on 127.0.0.1.

Measures what a slow or numerous audience costs the event path:

* spread: for each event, the delay between the first and the last subscriber receiving it
  (median, p99);
* latency: from the commit of the event to its last subscriber receiving it (median, p99);
* sustained rate: events per second delivered to every subscriber, from the first event's
  first delivery to the last event's last delivery, next to the rate the producer committed.

The server (real SSH, the real SqlDatastore on SQLite in a temporary directory) runs in a
thread of this process; the producer appends events through ``EventLog.emit`` (one
transaction per ``--batch`` events, as the lifecycle engine will); the subscribers are raw
asyncssh NETCONF clients in one event loop of a child process, so their parsing does not
compete with the server for this process's GIL. Receive times use ``time.monotonic()``,
which is one clock for every process of the machine. Bounded: everything stops after
``--timeout`` seconds.

    .venv/bin/python bench/notifications_fanout.py [--subscribers 100] [--events 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
USER, PASSWORD = "bench", "bench-pw"
_DETAILS = re.compile(rb"<details>bench-(\d+)</details>")
EOM = b"]]>]]>"


# ----------------------------------------------------------------------------- subscribers


async def _subscriber(
    port: int, events: int, seen: dict[int, float], ready: asyncio.Semaphore
) -> None:
    import asyncssh  # noqa: PLC0415 (only the child needs it)

    done = asyncio.Event()
    subscribed = asyncio.Event()
    buffer = bytearray()

    class Client(asyncssh.SSHClientSession[bytes]):
        def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
            now = time.monotonic()
            buffer.extend(data)
            while True:
                end = buffer.find(EOM)
                if end < 0:
                    return
                message = bytes(buffer[:end])
                del buffer[: end + len(EOM)]
                match = _DETAILS.search(message)
                if match is not None:
                    seen[int(match[1])] = now
                    if len(seen) == events:
                        done.set()
                elif b"<ok/>" in message:
                    subscribed.set()

        def connection_lost(self, exc: Exception | None) -> None:
            done.set()

    async with asyncssh.connect(
        "127.0.0.1", port, username=USER, password=PASSWORD, known_hosts=None, client_keys=None
    ) as conn:
        chan, _ = await conn.create_session(Client, subsystem="netconf", encoding=None)
        hello = (
            f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.0'
            "</capability></capabilities></hello>"
        )
        chan.write(hello.encode() + EOM)
        rpc = f'<rpc xmlns="{NC}" message-id="1"><create-subscription xmlns="{NOTIF}">'
        chan.write(f"{rpc}<stream>escEvent</stream></create-subscription></rpc>".encode() + EOM)
        await subscribed.wait()
        ready.release()
        await done.wait()


async def _children(port: int, subscribers: int, events: int, bound: float) -> None:
    seen: list[dict[int, float]] = [{} for _ in range(subscribers)]
    ready = asyncio.Semaphore(0)
    tasks = []
    for i in range(subscribers):  # spread the logins a little
        tasks.append(asyncio.create_task(_subscriber(port, events, seen[i], ready)))
        await asyncio.sleep(0.01)
    async with asyncio.timeout(bound):
        for _ in range(subscribers):
            await ready.acquire()
    print("READY", flush=True)
    try:
        async with asyncio.timeout(bound):
            await asyncio.gather(*tasks)
    except TimeoutError:
        pass
    report = {"cpu": time.process_time(), "seen": [{str(k): v for k, v in s.items()} for s in seen]}
    print(json.dumps(report), flush=True)


# ----------------------------------------------------------------------------- server side


def _serve(data_dir: Path, started: threading.Event, box: dict[str, Any]) -> None:
    from argon2 import PasswordHasher  # noqa: PLC0415

    from esc_orch.daemon.cli import run_server  # noqa: PLC0415
    from esc_orch.daemon.config import DaemonConfig, NotificationSettings  # noqa: PLC0415
    from esc_orch.daemon.users import UserStore  # noqa: PLC0415
    from esc_orch.northbound.backend import ConfigBackend  # noqa: PLC0415
    from esc_orch.northbound.core import Limits  # noqa: PLC0415
    from esc_orch.store.datastore import SqlDatastore  # noqa: PLC0415

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    users = UserStore(path=data_dir / "users.json", hasher=hasher)
    users.add(name=USER, password=PASSWORD)
    store = SqlDatastore.open(data_dir=data_dir)
    box["store"] = store
    config = replace(
        DaemonConfig(data_dir=data_dir, port=0),
        limits=Limits(max_sessions=1024, idle_timeout=0),
        notifications=NotificationSettings(queue_size=100_000),
    )

    async def main() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        async with run_server(
            config=config,
            backend=cast(ConfigBackend, store),
            authenticator=users,
            events=store.events,
        ) as server:
            box["port"] = server.port
            started.set()
            await stop.wait()

    try:
        asyncio.run(main())
    finally:
        store.close()
        started.set()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(*, subscribers: int, events: int, batch: int, timeout: float) -> dict[str, float]:
    from esc_orch.model.events import EscEvent, EventType  # noqa: PLC0415

    box: dict[str, Any] = {}
    started = threading.Event()
    with tempfile.TemporaryDirectory(prefix="esc-fanout-") as tmp:
        thread = threading.Thread(target=_serve, args=(Path(tmp), started, box), daemon=True)
        thread.start()
        if not started.wait(timeout=30) or "port" not in box:
            raise RuntimeError("the server did not start")
        child = subprocess.Popen(
            [
                *(sys.executable, __file__, "--child", str(box["port"])),
                *(str(subscribers), str(events), "--timeout", str(timeout)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"subscribers did not get ready: {line!r}")
            store = box["store"]
            committed: dict[int, float] = {}
            began = time.monotonic()
            for first in range(0, events, batch):
                ids = range(first, min(first + batch, events))
                store.events.emit(
                    [
                        EscEvent.success(EventType.VM_ALIVE, "bench", details=f"bench-{i}")
                        for i in ids
                    ]
                )
                now = time.monotonic()
                committed.update(dict.fromkeys(ids, now))
            produced = time.monotonic() - began
            out, _ = child.communicate(timeout=timeout + 10)
            server_cpu = time.process_time()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
            box["loop"].call_soon_threadsafe(box["stop"].set)
            thread.join(timeout=30)
    report = json.loads(out.strip().splitlines()[-1])
    seen: list[dict[str, float]] = report["seen"]
    complete = sum(1 for s in seen if len(s) == events)
    spreads, latencies = [], []
    firsts, lasts = [], []
    for i in range(events):
        times = [s[str(i)] for s in seen if str(i) in s]
        if len(times) != subscribers:
            continue
        spreads.append(max(times) - min(times))
        latencies.append(max(times) - committed[i])
        firsts.append(min(times))
        lasts.append(max(times))
    window = max(lasts) - min(firsts) if lasts else float("nan")
    return {
        "subscribers": subscribers,
        "events": events,
        "batch": batch,
        "subscribers_complete": complete,
        "producer_events_per_s": events / produced,
        "delivered_events_per_s": len(spreads) / window if window else float("nan"),
        "spread_median_ms": statistics.median(spreads) * 1000,
        "spread_p99_ms": _quantile(spreads, 0.99) * 1000,
        "latency_median_ms": statistics.median(latencies) * 1000,
        "latency_p99_ms": _quantile(latencies, 0.99) * 1000,
        "server_and_producer_cpu_s": server_cpu,
        "subscribers_process_cpu_s": float(report["cpu"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="events per transaction")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds, overall bound")
    parser.add_argument("--child", nargs=3, type=int, metavar=("PORT", "SUBS", "EVENTS"))
    args = parser.parse_args(argv)
    if args.child:
        port, subscribers, events = args.child
        asyncio.run(_children(port, subscribers, events, args.timeout))
        return 0
    result = run(
        subscribers=args.subscribers, events=args.events, batch=args.batch, timeout=args.timeout
    )
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(
            f"{key:<{width}}  {value:.2f}"
            if isinstance(value, float)
            else f"{key:<{width}}  {value}"
        )
    return 0 if result["subscribers_complete"] == args.subscribers else 1


if __name__ == "__main__":
    sys.exit(main())
