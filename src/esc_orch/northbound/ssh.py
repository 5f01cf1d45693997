"""The asyncssh adapter: the NETCONF SSH subsystem on top of the sans-I/O session.

This is the only module that imports asyncssh. It authenticates (password and public key
against the user store, with throttled failures), accepts the ``netconf`` subsystem, feeds
received bytes to :class:`~esc_orch.northbound.session.NetconfSession` and executes its
events in order on one worker task per session. Every byte a session sends goes through
:meth:`_NetconfChannel.write`, which holds the session's write lock and honours SSH flow
control, so replies and notifications never interleave inside a frame.

Waiting costs nothing: timeouts are ``loop.call_later`` timers (hello, idle, unfinished
message), reads are callbacks, and a slow reader pauses our reading instead of queueing work.

Bounded work per peer: a :class:`~esc_orch.northbound.admission.ConnectionGate` closes
connections beyond the limits of unauthenticated ones (in all, per source address), asyncssh's
login timeout bounds how long one may stay unauthenticated, and password checks (argon2, tens
of MiB each) run at most ``max_password_checks`` at a time. Parsing a request and rendering
its reply run in worker threads (lxml releases the GIL), so one huge request does not stop
the event loop from serving the other sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from esc_orch.northbound.admission import ConnectionGate, RateLimitedLog
from esc_orch.northbound.auth import Authenticator, LoginThrottle
from esc_orch.northbound.core import NetconfCore
from esc_orch.northbound.rpc import RpcContext
from esc_orch.northbound.session import (
    CloseConnection,
    DataReply,
    ErrorReply,
    Event,
    HelloReceived,
    NetconfSession,
    Reply,
    RpcMessage,
    RpcRequest,
    SendBytes,
)

log = logging.getLogger(__name__)

SUBSYSTEM = "netconf"
_CLOSE_GRACE = 0.2  # seconds between the close-session reply and closing the channel
_QUEUE_HIGH_WATER = 32  # queued events above which we stop reading from the client
#: Requests up to this size are parsed on the event loop, and small replies rendered there:
#: for them a worker-thread round trip (two loop wake-ups) cost more than the work itself
#: (about a third of a one-flavor edit's time). Larger ones still go to a worker thread, so
#: a 16 MB request or reply never holds the loop that serves the other sessions.
INLINE_BYTES = 16 * 1024
_INLINE_ERRORS = 16  # an error reply with more errors than this is rendered in a thread
#: Password checks at once: argon2 costs its memory_cost (19 MiB by default) per check. They
#: run on their own threads: each thread's malloc arena keeps what argon2 allocated, so
#: checks spread over the shared pool grew RSS by one working set per pool thread.
MAX_PASSWORD_CHECKS = 2
# Seconds a closed channel may take to finish its close handshake before the connection is
# aborted: a client that stopped reading (a stuck subscriber) never acknowledges the close.
_ABORT_GRACE = 2.0


def _renders_inline(reply: Reply) -> bool:
    """Whether rendering ``reply`` is cheap enough for the event loop (see INLINE_BYTES)."""
    if isinstance(reply, DataReply):
        return False  # a tree of any size: serialized in a worker thread
    if isinstance(reply, ErrorReply):
        return len(reply.errors) <= _INLINE_ERRORS
    return True  # ok, YANG output, or get-config already serialized (framed by copying)


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The server's ed25519 host key, created (mode 0600) on first start."""
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key())
        log.info("created SSH host key", extra={"path": str(path)})
    return asyncssh.read_private_key(path)


def public_key_matches(key: asyncssh.SSHKey, authorized: Sequence[str]) -> bool:
    """True if ``key`` is one of the OpenSSH public key lines in ``authorized``."""
    for line in authorized:
        try:
            candidate = asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError):
            continue
        if candidate.public_data == key.public_data:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Eof:
    """The client closed its side of the channel."""


class _NetconfChannel(asyncssh.SSHServerSession[bytes]):
    """One SSH channel running the netconf subsystem: one NETCONF session."""

    def __init__(self, *, core: NetconfCore, username: str, peer: str, conn: _SshServer) -> None:
        self._core = core
        self._username = username
        self._peer = peer
        self._conn = conn
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._session: NetconfSession | None = None
        self._queue: asyncio.Queue[Event | _Eof] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading_paused = False
        self._hello_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._message_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._lost = False
        self._queued_bytes = 0  # bytes of the unparsed messages in the queue

    # --------------------------------------------------------------- asyncssh callbacks

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != SUBSYSTEM:
            return False
        if self._core.session_count >= self._core.limits.max_sessions:
            log.warning("session refused: too many sessions", extra={"peer": self._peer})
            return False
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        if self._chan.get_subsystem() != SUBSYSTEM:
            self._chan.close()
            return
        self._conn.channel_started()
        self._session = self._core.new_session(
            username=self._username,
            peer=self._peer,
            terminate=self.terminate,
            send=self.send_messages,
        )
        log.info(
            "session started",
            extra={"session": self._session.session_id, "user": self._username, "peer": self._peer},
        )
        self._chan.write(self._session.hello_bytes())
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(
            self._core.limits.hello_timeout, self.terminate, "no hello before the timeout"
        )
        self._reset_idle_timer()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._session is None or self._closing:
            return
        self._reset_idle_timer()
        for event in self._session.receive_data(data, parse=False):
            if isinstance(event, HelloReceived) and self._hello_timer is not None:
                self._hello_timer.cancel()
            if isinstance(event, RpcMessage):
                self._queued_bytes += len(event.data)
            self._queue.put_nowait(event)
        self._update_message_timer()
        if self._over_high_water() and not self._reading_paused:
            assert self._chan is not None
            self._chan.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool:
        self._queue.put_nowait(_Eof())
        return False

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._lost = True
        self._cancel_timers()
        if self._worker is not None:
            self._worker.cancel()
        self._can_write.set()
        if self._session is not None:
            self._conn.spawn(self._core.end_session(self._session.session_id))
            self._conn.channel_ended()

    # --------------------------------------------------------------- the session's work

    async def write(self, data: bytes) -> None:
        """The session's only writer: whole frames, one at a time, respecting flow control."""
        async with self._write_lock:
            await self._can_write.wait()
            if self._chan is not None and not self._closing:
                self._chan.write(data)

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        """Frame unsolicited messages (notifications), each whole, and write them at once."""
        if self._session is not None:
            session = self._session
            await self.write(b"".join(session.frame(message) for message in messages))

    def terminate(self, reason: str) -> None:
        """Close the session now (timeouts, kill-session, protocol violations)."""
        if self._closing:
            return
        self._closing = True
        sid = self._session.session_id if self._session else 0
        log.info("session closed", extra={"session": sid, "peer": self._peer, "reason": reason})
        if self._session is not None:
            self._session.close()
        self._cancel_timers()
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
        if self._chan is not None:
            self._chan.close()
            asyncio.get_running_loop().call_later(_ABORT_GRACE, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._lost:
            sid = self._session.session_id if self._session else 0
            log.info(
                "connection aborted: the client did not close the channel", extra={"session": sid}
            )
            self._conn.abort()

    def _over_high_water(self) -> bool:
        """Too much queued: stop reading (at most two maximal messages wait unparsed)."""
        return (
            self._queue.qsize() > _QUEUE_HIGH_WATER
            or self._queued_bytes > 2 * self._core.limits.max_message_size
        )

    async def _work(self) -> None:
        assert self._session is not None
        session = self._session
        while not self._closing:
            event = await self._queue.get()
            if isinstance(event, RpcMessage):
                self._queued_bytes -= len(event.data)
                if len(event.data) <= INLINE_BYTES:
                    event = session.handle_rpc_message(event)
                else:
                    event = await asyncio.to_thread(session.handle_rpc_message, event)
            if (
                self._reading_paused
                and self._queue.qsize() <= _QUEUE_HIGH_WATER // 2
                and self._queued_bytes <= self._core.limits.max_message_size
            ):
                assert self._chan is not None
                self._chan.resume_reading()
                self._reading_paused = False
            if self._closing:
                return
            if isinstance(event, RpcRequest):
                ctx = RpcContext(
                    core=self._core,
                    session_id=session.session_id,
                    username=self._username,
                    request=event,
                )
                reply = await self._core.dispatch(ctx)
                if _renders_inline(reply):
                    await self.write(session.render_reply(event, reply))
                else:
                    await self.write(await asyncio.to_thread(session.render_reply, event, reply))
                for callback in ctx.after_reply:
                    callback()
                if ctx.close_after_reply:
                    # Let the reply arrive in its own read before EOF: some clients
                    # (yangcli) discard a final buffer that comes together with EOF.
                    session.close()
                    asyncio.get_running_loop().call_later(
                        _CLOSE_GRACE, self.terminate, "close-session"
                    )
                    return
            elif isinstance(event, SendBytes):
                await self.write(event.data)
            elif isinstance(event, HelloReceived):
                log.info(
                    "hello received",
                    extra={"session": session.session_id, "framing": str(event.framing)},
                )
            elif isinstance(event, CloseConnection):
                self.terminate(event.reason)
            else:
                self.terminate("client closed the channel")

    def _reset_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        timeout = self._core.limits.idle_timeout
        if timeout > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(timeout, self._idle)

    def _idle(self) -> None:
        """A session receiving notifications is busy even when its client says nothing."""
        info = self._core.sessions.get(self._session.session_id) if self._session else None
        if info is not None and info.subscribed:
            self._reset_idle_timer()
        else:
            self.terminate("idle timeout")

    def _update_message_timer(self) -> None:
        assert self._session is not None
        if not self._session.has_partial_message:
            if self._message_timer is not None:
                self._message_timer.cancel()
                self._message_timer = None
        elif self._message_timer is None:
            self._message_timer = asyncio.get_running_loop().call_later(
                self._core.limits.message_timeout, self.terminate, "incomplete message timeout"
            )

    def _cancel_timers(self) -> None:
        for timer in (self._hello_timer, self._idle_timer, self._message_timer):
            if timer is not None:
                timer.cancel()


class _SshServer(asyncssh.SSHServer):
    """One SSH connection: authentication, then netconf channels."""

    def __init__(self, server: NetconfSshServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._channels = 0
        self._no_channel_timer: asyncio.TimerHandle | None = None
        self._pending_auth = False  # counted by the server's gate until login or close

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "?"
        gate = self._server.gate
        refusal = gate.admit(self._peer)
        if refusal is not None:
            self._server.refusal_log.warning(
                f"connection refused: {refusal}",
                {
                    "peer": self._peer,
                    "pending": gate.pending,
                    "pending_from_peer": gate.pending_from(self._peer),
                    "max_total": gate.limits.max_total,
                    "max_per_source": gate.limits.max_per_source,
                },
            )
            asyncio.get_running_loop().call_soon(conn.abort)
            return
        self._pending_auth = True
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._pending_auth:
            self._pending_auth = False
            self._server.gate.closed(self._peer)
        if self._no_channel_timer is not None:
            self._no_channel_timer.cancel()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def abort(self) -> None:
        """Drop the TCP connection at once (the peer does not read what we send)."""
        if self._conn is not None:
            self._conn.abort()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._server.spawn(coro)

    def channel_started(self) -> None:
        self._channels += 1
        if self._no_channel_timer is not None:
            self._no_channel_timer.cancel()
            self._no_channel_timer = None

    def channel_ended(self) -> None:
        self._channels -= 1
        if self._channels <= 0:
            self.close()  # one NETCONF session per connection: free the connection too

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def kbdint_auth_supported(self) -> bool:
        return False

    async def validate_password(self, username: str, password: str) -> bool:
        """Check at once; delay only the *failure* answer by the throttle's backoff.

        Delaying before the check made the real admin wait out the backoff that an attacker
        guessing its name (or sharing its address) had built up: 8 s after a storm of wrong
        passwords. A failing client still waits as long before its next attempt, and the
        checks themselves are bounded by the two password-check threads.
        """
        throttle = self._server.throttle
        keys = throttle.keys(username=username, peer=self._peer)
        check = functools.partial(
            self._server.authenticator.verify_password, username=username, password=password
        )
        ok = await asyncio.get_running_loop().run_in_executor(self._server.password_checks, check)
        if ok:
            throttle.record_success(keys[:1])
            return True
        throttle.record_failure(keys)
        log.warning("login failed", extra={"user": username, "peer": self._peer})
        delay = throttle.delay(keys)
        if delay > 0:
            await asyncio.sleep(delay)
        return False

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        authorized = await asyncio.to_thread(
            self._server.authenticator.authorized_keys, username=username
        )
        return public_key_matches(key, authorized)

    def auth_completed(self) -> None:
        if self._pending_auth:
            self._pending_auth = False
            self._server.gate.authenticated(self._peer)
        loop = asyncio.get_running_loop()
        self._no_channel_timer = loop.call_later(
            self._server.core.limits.hello_timeout, self._close_if_idle
        )

    def _close_if_idle(self) -> None:
        if self._channels == 0:
            log.info("connection closed: no netconf session opened", extra={"peer": self._peer})
            self.close()

    def session_requested(self) -> _NetconfChannel:
        assert self._conn is not None
        username = self._conn.get_extra_info("username") or "?"
        return _NetconfChannel(
            core=self._server.core, username=str(username), peer=self._peer, conn=self
        )


class NetconfSshServer:
    """NETCONF over SSH on one address; ``start()``, then ``close()`` + ``wait_closed()``."""

    def __init__(
        self,
        *,
        core: NetconfCore,
        authenticator: Authenticator,
        host_key_path: Path,
        host: str = "127.0.0.1",
        port: int = 830,
        throttle: LoginThrottle | None = None,
        max_password_checks: int = MAX_PASSWORD_CHECKS,
    ) -> None:
        self.core = core
        self.authenticator = authenticator
        self.throttle = throttle or LoginThrottle()
        self.gate = ConnectionGate(
            max_total=core.limits.max_preauth_connections,
            max_per_source=core.limits.max_preauth_per_source,
        )
        self.refusal_log = RateLimitedLog(log)
        self.password_checks = ThreadPoolExecutor(
            max_workers=max_password_checks, thread_name_prefix="password-check"
        )
        self.connections: set[_SshServer] = set()
        self._host_key_path = host_key_path
        self._host = host
        self._port = port
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        assert self._acceptor is not None, "server not started"
        return self._acceptor.get_port()

    async def start(self) -> None:
        host_key = await asyncio.to_thread(load_or_create_host_key, self._host_key_path)
        self._acceptor = await asyncssh.create_server(
            lambda: _SshServer(self),
            self._host,
            self._port,
            server_host_keys=[host_key],
            encoding=None,
            # The SSH login grace time: from TCP accept to a finished authentication.
            login_timeout=self.core.limits.login_grace_time,
            keepalive_interval=60,
            keepalive_count_max=3,
            reuse_address=True,
        )
        log.info("listening", extra={"address": self._host, "port": self.port})

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a cleanup coroutine to completion even after its channel is gone."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._acceptor is not None:
            self._acceptor.close()
        for conn in list(self.connections):
            conn.close()

    async def wait_closed(self) -> None:
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        for _ in range(100):
            if not self.connections and not self._tasks:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.password_checks.shutdown(wait=False, cancel_futures=True)
