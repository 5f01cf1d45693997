"""The RPC registry: operations keyed by (namespace, name), dispatched with errors as data.

Base NETCONF operations (``ops.py``), the ESC RPCs (``esc_rpcs.py``) and later features
(create-subscription) all register the same way, so adding an operation never touches the
session or transport code. A handler is an async callable taking an :class:`RpcContext` and
the operation element; it returns a :class:`~esc_orch.northbound.session.Reply` or raises
:class:`~esc_orch.model.errors.RpcError` / ``RpcErrors``, which :meth:`RpcRegistry.dispatch`
turns into an ``ErrorReply``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree

from esc_orch import metrics
from esc_orch.model.errors import ErrorTag, ErrorType, RpcError, RpcErrors
from esc_orch.northbound.session import ErrorReply, Reply, RpcRequest

if TYPE_CHECKING:
    from esc_orch.northbound.core import NetconfCore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RpcContext:
    """What a handler knows about the request it serves."""

    core: NetconfCore
    session_id: int
    username: str
    request: RpcRequest
    close_after_reply: bool = False  # set by close-session
    #: Run by the transport once the reply is written (a subscription starts sending then).
    after_reply: list[Callable[[], None]] = field(default_factory=list)


Handler = Callable[[RpcContext, etree._Element], Awaitable[Reply]]


class RpcRegistry:
    """Handlers keyed by ``(namespace, local name)`` of the operation element."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, *, namespace: str, name: str, handler: Handler) -> None:
        """Add or replace the handler of one operation (replacing is how stubs get rewired)."""
        self._handlers[(namespace, name)] = handler

    def operation(self, *, namespace: str, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(namespace=namespace, name=name, handler=handler)
            return handler

        return decorate

    def get(self, key: tuple[str, str]) -> Handler | None:
        return self._handlers.get(key)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._handlers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._handlers)

    async def dispatch(self, ctx: RpcContext) -> Reply:
        """Run the handler of ``ctx.request``; every failure becomes an ``ErrorReply``.

        Counts the rpc in the server's RFC 6022 statistics, its session's figures and the
        Prometheus latency histogram.
        """
        started = time.perf_counter()
        reply = await self._dispatch(ctx)
        known = ctx.request.key in self._handlers
        ok = not isinstance(reply, ErrorReply)
        ctx.core.statistics.count_rpc(
            ctx.core.sessions.get(ctx.session_id), error=not ok, unknown=not known
        )
        name = ctx.request.key[1] if known else "unsupported"
        metrics.rpc_handled(operation=name, ok=ok, seconds=time.perf_counter() - started)
        return reply

    async def _dispatch(self, ctx: RpcContext) -> Reply:
        operation = ctx.request.operation
        handler = self._handlers.get(ctx.request.key)
        if handler is None:
            namespace, name = ctx.request.key
            return ErrorReply(
                errors=(
                    RpcError(
                        tag=ErrorTag.OPERATION_NOT_SUPPORTED,
                        type=ErrorType.PROTOCOL,
                        message=f"operation {name!r} in namespace {namespace!r} is not supported",
                        info={"bad-element": name},
                    ),
                )
            )
        try:
            return await handler(ctx, operation)
        except (RpcError, RpcErrors) as exc:
            return ErrorReply.of(exc)
        except Exception:
            log.exception(
                "rpc handler failed",
                extra={"session": ctx.session_id, "rpc": ctx.request.key[1]},
            )
            return ErrorReply(
                errors=(
                    RpcError(
                        tag=ErrorTag.OPERATION_FAILED,
                        message="internal error while processing the request (see server log)",
                    ),
                )
            )
