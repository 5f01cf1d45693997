"""State shared by all NETCONF sessions of one server: session ids, locks, datastore access.

The per-session protocol lives in ``session.py`` and the transport in ``ssh.py``; what
crosses sessions lives here: the session table (for kill-session), the datastore locks (which
die with their session) and the one mutex that serialises datastore access so that a lock
check and the edit it guards can never be separated by another session's request.
Datastore calls are synchronous (see ``backend.py``) and run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from lxml import etree

from esc_orch import metrics
from esc_orch.model.errors import NC_BASE_NS, ErrorTag, ErrorType, RpcError
from esc_orch.northbound.backend import (
    ConfigBackend,
    Datastore,
    GroupCommitBackend,
    PublishingBackend,
    RunningSnapshotBackend,
)
from esc_orch.northbound.framing import DEFAULT_MAX_MESSAGE_SIZE
from esc_orch.northbound.group import EditGroups
from esc_orch.northbound.rpc import RpcContext, RpcRegistry
from esc_orch.northbound.session import (
    DEFAULT_MAX_ATTRIBUTE_BYTES,
    DEFAULT_MAX_RPC_ATTRIBUTES,
    NetconfSession,
    Reply,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Operations that read or write only the configuration, never what the datastore's listeners
#: keep: they need not wait for committed changes to reach the lifecycle.
_NO_SETTLE = frozenset(
    (NC_BASE_NS, name) for name in ("edit-config", "get-config", "lock", "unlock", "close-session")
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of the NETCONF server (all configurable in the daemon's TOML file)."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    hello_timeout: float = 30.0  # seconds for the client's hello after the channel opens
    idle_timeout: float = 3600.0  # seconds without any byte from the client; 0 = never
    message_timeout: float = 60.0  # seconds to finish a message once its first byte arrived
    max_sessions: int = 64
    max_rpc_attributes: int = DEFAULT_MAX_RPC_ATTRIBUTES  # attributes of one <rpc> (echoed)
    max_attribute_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES  # bytes of one <rpc> attribute
    max_filter_nodes: int = 10_000  # elements of one <filter> (subtree filter work)
    #: Connections that have not finished SSH authentication, in all and per source address;
    #: more are closed at once (a flood of idle TCP connections must not exhaust the fds).
    max_preauth_connections: int = 256
    max_preauth_per_source: int = 32
    login_grace_time: float = 30.0  # seconds from TCP accept to a finished SSH login


@dataclass(slots=True)
class SessionInfo:
    session_id: int
    username: str
    peer: str
    terminate: Callable[[str], None]  # closes the transport; called by kill-session
    #: Writes unframed messages (notifications), each framed, in one write through the
    #: session's single writer; None for sessions without a transport (in-process tests).
    send: Callable[[Sequence[bytes]], Awaitable[None]] | None = None
    #: True while a notification subscription is active (the session is then never idle).
    subscribed: bool = False
    #: RFC 6022 per-session figures (netconf-state/sessions).
    login_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    in_rpcs: int = 0
    in_bad_rpcs: int = 0
    out_rpc_errors: int = 0


@dataclass(slots=True)
class ServerStatistics:
    """RFC 6022 ``netconf-state/statistics``: counted since the server started."""

    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    in_sessions: int = 0
    dropped_sessions: int = 0
    in_rpcs: int = 0
    in_bad_rpcs: int = 0
    out_rpc_errors: int = 0

    def count_rpc(self, info: SessionInfo | None, *, error: bool, unknown: bool) -> None:
        """Count one rpc (``unknown``: no such operation) and whether it failed."""
        self.in_rpcs += 1
        self.in_bad_rpcs += unknown
        self.out_rpc_errors += error
        if info is not None:
            info.in_rpcs += 1
            info.in_bad_rpcs += unknown
            info.out_rpc_errors += error


@dataclass
class LockTable:
    """Global datastore locks (RFC 6241 §7.5): datastore -> holding session id."""

    holders: dict[Datastore, int] = field(default_factory=dict)
    #: When each held lock was taken (netconf-state/datastores).
    taken: dict[Datastore, datetime] = field(default_factory=dict)

    def holder(self, datastore: Datastore) -> int | None:
        return self.holders.get(datastore)

    def since(self, datastore: Datastore) -> datetime | None:
        return self.taken.get(datastore) if datastore in self.holders else None

    def acquire(self, datastore: Datastore, session_id: int) -> None:
        holder = self.holders.get(datastore)
        if holder is not None:
            whom = "this session" if holder == session_id else f"session {holder}"
            raise RpcError(
                tag=ErrorTag.LOCK_DENIED,
                type=ErrorType.PROTOCOL,
                message=f"the {datastore} datastore is already locked by {whom}",
                info={"session-id": str(holder)},
            )
        self.holders[datastore] = session_id
        self.taken[datastore] = datetime.now(UTC)

    def release(self, datastore: Datastore, session_id: int) -> None:
        holder = self.holders.get(datastore)
        if holder != session_id:
            message = (
                f"the {datastore} datastore is not locked"
                if holder is None
                else f"the {datastore} datastore is locked by session {holder}, not by this one"
            )
            raise RpcError(
                tag=ErrorTag.OPERATION_FAILED,
                type=ErrorType.PROTOCOL,
                message=message,
                info={"session-id": str(holder or 0)},
            )
        del self.holders[datastore]

    def check_writable(self, datastores: Sequence[Datastore], session_id: int) -> None:
        """Raise ``in-use`` when one of ``datastores`` is locked by another session."""
        for datastore in datastores:
            holder = self.holders.get(datastore)
            if holder is not None and holder != session_id:
                raise RpcError(
                    tag=ErrorTag.IN_USE,
                    type=ErrorType.PROTOCOL,
                    message=f"the {datastore} datastore is locked by session {holder}",
                    info={"session-id": str(holder)},
                )

    def release_all(self, session_id: int) -> list[Datastore]:
        released = [ds for ds, holder in self.holders.items() if holder == session_id]
        for ds in released:
            del self.holders[ds]
        return released


class NetconfCore:
    """One per server; every session and handler reaches the datastore through it."""

    def __init__(
        self,
        *,
        backend: ConfigBackend,
        registry: RpcRegistry,
        capabilities: Sequence[str],
        limits: Limits | None = None,
    ) -> None:
        self.backend = backend
        #: The backend's fast paths, where it has them (typed ports, decided once here).
        self.grouping = backend if isinstance(backend, GroupCommitBackend) else None
        self.snapshots = backend if isinstance(backend, RunningSnapshotBackend) else None
        self.publishing = backend if isinstance(backend, PublishingBackend) else None
        self.registry = registry
        self.capabilities = tuple(capabilities)
        self.limits = limits or Limits()
        self.locks = LockTable()
        self.sessions: dict[int, SessionInfo] = {}
        self._ids = itertools.count(1)
        self._mutex = asyncio.Lock()
        self._groups = EditGroups(mutex=self._mutex)
        #: Called with the session id when a session ends (subscriptions end with it).
        self.session_end_hooks: list[Callable[[int], None]] = []
        #: Extra operational data for ``get`` (``netconf/streams``); called in a worker
        #: thread, each returns a ``<data>`` element.
        self.state_providers: list[Callable[[], etree._Element]] = []
        self.statistics = ServerStatistics()

    def new_session(
        self,
        *,
        username: str,
        peer: str,
        terminate: Callable[[str], None],
        send: Callable[[Sequence[bytes]], Awaitable[None]] | None = None,
    ) -> NetconfSession:
        """Register a session and return its protocol state machine."""
        session_id = next(self._ids)
        self.statistics.in_sessions += 1
        self.sessions[session_id] = SessionInfo(
            session_id=session_id, username=username, peer=peer, terminate=terminate, send=send
        )
        metrics.NETCONF_SESSIONS.inc()
        metrics.NETCONF_SESSIONS_STARTED.inc()
        return NetconfSession(
            session_id=session_id,
            capabilities=self.capabilities,
            max_message_size=self.limits.max_message_size,
            max_rpc_attributes=self.limits.max_rpc_attributes,
            max_attribute_bytes=self.limits.max_attribute_bytes,
        )

    @property
    def session_count(self) -> int:
        return len(self.sessions)

    async def dispatch(self, ctx: RpcContext) -> Reply:
        """Run one request's handler. Any operation but edit-config and get-config first
        waits until every committed change has reached the backend's listeners (a ``get``
        of opdata or an action then sees the lifecycle after every acknowledged edit)."""
        publishing = self.publishing
        if (
            publishing is not None
            and ctx.request.key not in _NO_SETTLE
            and publishing.publications_pending()
        ):
            await asyncio.to_thread(publishing.flush_publications)
        return await self.registry.dispatch(ctx)

    async def run(self, fn: Callable[[], T], *, before: Callable[[], None] | None = None) -> T:
        """Run ``fn`` in a worker thread under the datastore mutex, ``before`` first.

        ``before`` runs on the event loop inside the mutex (lock checks). Cancelling the
        caller (kill-session) does not release the mutex before ``fn`` has returned.
        """
        ticket = self._groups.enter_solo()
        try:
            return await self._run_alone(fn, before=before)
        finally:
            self._groups.leave_solo(ticket)

    async def _run_alone(self, fn: Callable[[], T], *, before: Callable[[], None] | None) -> T:
        async with self._mutex:
            if before is not None:
                before()
            task = asyncio.ensure_future(asyncio.to_thread(fn))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await asyncio.wait({task})
                raise

    async def run_edit(self, fn: Callable[[], T], *, before: Callable[[], None]) -> T:
        """Like :meth:`run`, for edit-config: with a :class:`GroupCommitBackend`, edits
        queued meanwhile are committed in one transaction (``group.py`` says how RFC 6241
        order and semantics are kept)."""
        if self.grouping is None:
            return await self.run(fn, before=before)
        result: T = await self._groups.run(fn, before=before, runner=self.grouping.run_group)
        return result

    async def read(self, fn: Callable[[], T]) -> T:
        """Run a read in a worker thread, outside the mutex: the backend reads a snapshot
        (running from memory, the candidate in one database transaction), so a read never
        waits behind an edit in progress and sees it either whole or not at all."""
        return await asyncio.to_thread(fn)

    async def end_session(self, session_id: int) -> None:
        """Forget a session and release its locks; idempotent.

        Uncommitted candidate changes of a session that held the candidate lock are
        abandoned, so they are discarded (RFC 6241 §8.3.5).
        """
        if self.sessions.pop(session_id, None) is None:
            return
        metrics.NETCONF_SESSIONS.dec()
        for hook in list(self.session_end_hooks):
            try:
                hook(session_id)
            except Exception:
                log.exception("session end hook failed", extra={"session": session_id})

        def release() -> list[Datastore]:
            released = self.locks.release_all(session_id)
            if Datastore.CANDIDATE in released:
                self.backend.discard_changes()
            return released

        released = await self.run(release)
        log.info(
            "session ended",
            extra={"session": session_id, "released_locks": ",".join(released) or "-"},
        )

    async def kill_session(self, *, target: int, by: int) -> None:
        """Terminate another session (its locks are released before this returns)."""
        if target == by:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                type=ErrorType.PROTOCOL,
                message="a session cannot kill itself; use close-session",
                info={"bad-element": "session-id"},
            )
        info = self.sessions.get(target)
        if info is None:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                type=ErrorType.PROTOCOL,
                message=f"no session with id {target}",
                info={"bad-element": "session-id"},
            )
        log.info("session killed", extra={"session": target, "killed_by": by})
        self.statistics.dropped_sessions += 1
        info.terminate(f"killed by session {by}")
        await self.end_session(target)
