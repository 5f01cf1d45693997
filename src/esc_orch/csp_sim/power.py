"""Per-host power: a supervised host process and its out-of-band power controller (a BMC).

A real CSP host has a BMC (IPMI, Redfish) on its own address with its own credentials that can
cut the host's power whatever the hypervisor is doing, hung or not. Here the host is an
``esc-csp-sim host`` process and its "power" is the process itself: **off** is SIGKILL (the
kernel then drops the OFD locks of its disks, as a powered-off hypervisor releases its Gluster
image locks), **on** starts the process again with its persisted state, **cycle** is both.
The controller's HTTP API (:func:`make_power_app`) listens on 127.0.0.1 on a port of its own and
answers while the host is hung (SIGSTOP), which is exactly what a fence agent relies on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

READY_TIMEOUT_S = 20.0
POWER_JSON = "application/json"


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"


class PowerAction(StrEnum):
    ON = "on"
    OFF = "off"
    CYCLE = "cycle"


class HostStartError(RuntimeError):
    """The host process did not print READY (it exited or timed out)."""


class HostProcess:
    """One supervised ``esc-csp-sim host`` process, restartable on the port it first got.

    ``on_exit(host, returncode)`` is called when the process ends without being told to (a
    crash, or a ``kill`` from outside); ends we caused (power off, stop) are not reported.
    """

    def __init__(
        self,
        *,
        name: str,
        command: Callable[[int], list[str]],
        port: int = 0,
        on_exit: Callable[[HostProcess, int], None] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.url = ""
        self.paused = False
        self._command = command
        self._on_exit = on_exit
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._expected_end = False
        self.lock = asyncio.Lock()  # one power operation at a time

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def power(self) -> PowerState:
        return PowerState.ON if self.running else PowerState.OFF

    async def start(self, *, ready_within: float = READY_TIMEOUT_S) -> str:
        """Start the process (no-op when it runs) and wait for its READY line; its URL."""
        if self.running:
            return self.url
        proc = await asyncio.create_subprocess_exec(
            *self._command(self.port), stdout=asyncio.subprocess.PIPE
        )
        self._proc, self._expected_end, self.paused = proc, False, False
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(ready_within):
                while True:
                    line = (await proc.stdout.readline()).decode()
                    if not line:
                        raise HostStartError(f"{self.name} exited with {await proc.wait()}")
                    if line.startswith("READY "):
                        self.url = line.split()[2]
                        break
        except BaseException:
            await self._end(signal.SIGKILL)
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        self._watch = asyncio.get_running_loop().create_task(self._watch_exit(proc))
        return self.url

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        rc = await proc.wait()
        if proc is self._proc and not self._expected_end and self._on_exit is not None:
            self._on_exit(self, rc)

    async def _end(self, sig: signal.Signals, *, grace: float = 10.0) -> int | None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return None if proc is None else proc.returncode
        self._expected_end = True
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(sig)
        try:
            async with asyncio.timeout(grace):
                rc = await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            rc = await proc.wait()
        self.paused = False
        return rc

    async def kill(self) -> int | None:
        """Power loss: SIGKILL, and wait until the process is gone (its locks with it)."""
        return await self._end(signal.SIGKILL)

    async def stop(self) -> int | None:
        """Graceful shutdown (SIGTERM)."""
        return await self._end(signal.SIGTERM)

    def pause(self) -> None:
        """Partition/hang: SIGSTOP (the API goes silent, the disk locks stay held)."""
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGCONT)
            self.paused = False

    async def power_action(self, action: PowerAction) -> PowerState:
        """What the power controller does; returns the power state once it is reached."""
        async with self.lock:
            if action in (PowerAction.OFF, PowerAction.CYCLE):
                await self.kill()
            if action in (PowerAction.ON, PowerAction.CYCLE):
                await self.start()
        return self.power


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerCredentials:
    user: str
    password: str


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(status: int, data: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type=POWER_JSON)


def _authorized(header: str | None, creds: PowerCredentials) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.encode(), creds.user.encode())
    return hmac.compare_digest(password.encode(), creds.password.encode()) and ok_user


def make_power_app(host: HostProcess, creds: PowerCredentials) -> web.Application:
    """``GET /power`` and ``POST /power {"action": "on"|"off"|"cycle"}`` for one host.

    Both answer ``{"host": name, "power": "on"|"off"}``; a POST answers once the state is
    reached (after "off" the process is reaped, so its disk locks are gone).
    """

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _authorized(request.headers.get("Authorization"), creds):
            resp = _answer(401, {"error": "access denied"})
            resp.headers["WWW-Authenticate"] = 'Basic realm="power"'
            return resp
        return await handler(request)

    def state() -> dict[str, Any]:
        return {"host": host.name, "power": host.power.value}

    async def get_power(request: web.Request) -> web.Response:
        return _answer(200, state())

    async def post_power(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            action = PowerAction(str(body["action"]))
        except (ValueError, KeyError, TypeError):
            choices = ", ".join(a.value for a in PowerAction)
            return _answer(400, {"error": f'expected {{"action": one of {choices}}}'})
        try:
            await host.power_action(action)
        except (HostStartError, TimeoutError, OSError) as exc:
            return _answer(500, {"error": f"power {action.value} failed: {exc}"} | state())
        return _answer(200, state())

    app = web.Application(middlewares=[auth])
    app.router.add_route("GET", "/power", get_power)
    app.router.add_route("POST", "/power", post_power)
    return app
