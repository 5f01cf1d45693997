"""A real esc-orchd NETCONF server on 127.0.0.1 in a background thread, and client helpers.

The server runs on its own event loop so blocking clients (ncclient, the CLI) can be used
directly from tests. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from esc_orch.cli import wakeup
from esc_orch.cli.main import open_manager
from esc_orch.daemon.cli import run_server
from esc_orch.daemon.config import DaemonConfig
from esc_orch.daemon.users import UserStore
from esc_orch.northbound.auth import LoginThrottle
from esc_orch.northbound.core import Limits
from esc_orch.northbound.ssh import NetconfSshServer
from nbsupport.memory_backend import MemoryBackend

wakeup.install()  # the client as esc_nc_cli runs it (no 1 ms polling)

USER, PASSWORD = "admin", "s3cret-pw"
FAST_LIMITS = Limits(hello_timeout=1.0, idle_timeout=30.0, message_timeout=1.0, max_sessions=16)


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def prepare_data_dir(path: Path) -> Path:
    store = UserStore(path=path / "users.json", hasher=cheap_hasher())
    if USER not in store.users():
        store.add(name=USER, password=PASSWORD)
    return path


class ServerThread:
    def __init__(
        self, *, data_dir: Path, backend: MemoryBackend, limits: Limits = FAST_LIMITS
    ) -> None:
        self.config = replace(DaemonConfig(data_dir=data_dir, port=0), limits=limits)
        self.backend = backend
        self.port = 0
        self.server: NetconfSshServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nc-server", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=15):
            raise TimeoutError("server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        throttle = LoginThrottle(base_delay=0.05, max_delay=0.2)
        assert self.config.data_dir is not None
        async with run_server(
            config=self.config,
            backend=self.backend,
            throttle=throttle,
            authenticator=UserStore(
                path=self.config.data_dir / "users.json", hasher=cheap_hasher()
            ),
        ) as server:
            self.server = server
            self.port = server.port
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the server loop and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def session_count(self) -> int:
        assert self.server is not None
        return int(self.call(lambda: self.server.core.session_count))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "server thread did not stop"


def nc_connect(
    port: int, *, user: str = USER, password: str = PASSWORD, timeout: float = 10
) -> Any:
    return open_manager(host="127.0.0.1", port=port, user=user, password=password, timeout=timeout)
