"""A real NETCONF server over the real SqlDatastore (with its event log), in a thread.

Like :class:`nbsupport.server.ServerThread`, but the backend is a ``SqlDatastore`` on a file
in ``data_dir`` and notifications are on; :meth:`restart` stops the server and starts a new
one over the same SQLite file (a daemon restart, as far as the event log can tell).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from esc_orch.daemon.cli import run_server
from esc_orch.daemon.config import DaemonConfig, NotificationSettings
from esc_orch.daemon.users import UserStore
from esc_orch.northbound.auth import LoginThrottle
from esc_orch.northbound.ssh import NetconfSshServer
from esc_orch.store.datastore import SqlDatastore
from nbsupport.server import FAST_LIMITS, cheap_hasher, prepare_data_dir


class SqlServerThread:
    def __init__(self, *, data_dir: Path, queue_size: int = 10_000) -> None:
        prepare_data_dir(data_dir)
        self.data_dir = data_dir
        self.config = replace(
            DaemonConfig(data_dir=data_dir, port=0),
            limits=replace(FAST_LIMITS, max_sessions=32),
            notifications=NotificationSettings(queue_size=queue_size),
        )
        self.store: SqlDatastore | None = None
        self.server: NetconfSshServer | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SqlServerThread:
        self.store = SqlDatastore.open(data_dir=self.data_dir)
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._main(ready))
            except BaseException as exc:
                errors.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="nc-sql-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=15):
            raise TimeoutError("server did not start")
        if errors:
            raise errors[0]
        return self

    async def _main(self, ready: threading.Event) -> None:
        assert self.store is not None
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_server(
            config=self.config,
            backend=self.store,
            throttle=LoginThrottle(base_delay=0.05, max_delay=0.2),
            authenticator=UserStore(path=self.data_dir / "users.json", hasher=cheap_hasher()),
            events=self.store.events,
        ) as server:
            self.server = server
            self.port = server.port
            ready.set()
            await self._stop.wait()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the server loop and return its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def session_count(self) -> int:
        return int(self.call(lambda: self.server.core.session_count))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)
            assert not self._thread.is_alive(), "server thread did not stop"
        if self.store is not None:
            self.store.close()
            self.store = None

    def restart(self) -> SqlServerThread:
        self.stop()
        return self.start()
