"""Our own RPCs (module ``esc-orch``, prefix ``eo``): what ESC's model lacks for safe moves.

* ``eo:confirm-host-down`` (``vim_id``): an operator states that a VIM connector's host is
  down; recorded with the NETCONF user and the time, it lets a move waiting for proof that the
  old copy cannot run go on (docs/fencing.md).
* ``eo:recheck-vim-connector`` (``vim_id``): check the connector now and re-arm the work
  waiting on it.

Input is validated against yang/esc-orch.yang by libyang (the same hook as the ESC RPCs), then
handed to an :class:`EoActionSink` (the daemon's lifecycle). Without one, a well-formed
request is answered ``operation-not-supported``. Replies ``<ok/>`` on acceptance.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError
from esc_orch.model.schema import EO_NS
from esc_orch.northbound.esc_rpcs import RpcValidator
from esc_orch.northbound.rpc import RpcContext, RpcRegistry
from esc_orch.northbound.session import OkReply, Reply


class EoRpc(StrEnum):
    CONFIRM_HOST_DOWN = "confirm-host-down"
    RECHECK_VIM_CONNECTOR = "recheck-vim-connector"


class EoActionSink(Protocol):
    """Where accepted eo: requests go. Raise ``RpcError`` to reject (e.g. unknown vim_id)."""

    async def confirm_host_down(self, vim_id: str, *, user: str) -> None: ...

    async def recheck_vim_connector(self, vim_id: str) -> None: ...


def _vim_id(op: etree._Element, rpc: EoRpc) -> str:
    found = op.find(f"{{{EO_NS}}}vim_id")
    value = (found.text or "").strip() if found is not None else ""
    if not value:
        raise RpcError(
            tag=ErrorTag.MISSING_ELEMENT,
            type=ErrorType.APPLICATION,
            message=f"{rpc} needs a non-empty vim_id",
            path=f"/eo:{rpc}",
            info={"bad-element": "vim_id"},
        )
    return value


def register_eo_rpcs(
    registry: RpcRegistry,
    *,
    sink: EoActionSink | None = None,
    validator: RpcValidator | None = None,
) -> None:
    """Register ``eo:confirm-host-down`` and ``eo:recheck-vim-connector``."""

    def accepted(op: etree._Element, rpc: EoRpc) -> tuple[EoActionSink, str]:
        if validator is not None:
            validator(op)
        vim_id = _vim_id(op, rpc)
        if sink is None:
            raise RpcError(
                tag=ErrorTag.OPERATION_NOT_SUPPORTED,
                type=ErrorType.APPLICATION,
                message=f"{rpc} needs the lifecycle, which this server does not run",
            )
        return sink, vim_id

    async def confirm_host_down(ctx: RpcContext, op: etree._Element) -> Reply:
        target, vim_id = accepted(op, EoRpc.CONFIRM_HOST_DOWN)
        await target.confirm_host_down(vim_id, user=ctx.username)
        return OkReply()

    async def recheck(ctx: RpcContext, op: etree._Element) -> Reply:
        target, vim_id = accepted(op, EoRpc.RECHECK_VIM_CONNECTOR)
        await target.recheck_vim_connector(vim_id)
        return OkReply()

    registry.register(namespace=EO_NS, name=EoRpc.CONFIRM_HOST_DOWN, handler=confirm_host_down)
    registry.register(namespace=EO_NS, name=EoRpc.RECHECK_VIM_CONNECTOR, handler=recheck)
