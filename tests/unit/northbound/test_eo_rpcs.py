"""Our RPCs (eo:confirm-host-down, eo:recheck-vim-connector): YANG-valid input, the sink called
with the NETCONF user, and clear errors without input or without a lifecycle."""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.cli import payloads
from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.model.schema import EO_NS
from esc_orch.model.validate import require_valid_rpc
from esc_orch.northbound.eo_rpcs import EoRpc, register_eo_rpcs
from esc_orch.northbound.rpc import Handler, RpcContext, RpcRegistry


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    async def confirm_host_down(self, vim_id: str, *, user: str) -> None:
        self.calls.append(("confirm", vim_id, user))

    async def recheck_vim_connector(self, vim_id: str) -> None:
        self.calls.append(("recheck", vim_id, None))


def test_the_cli_payloads_are_valid_against_our_module() -> None:
    require_valid_rpc(payloads.confirm_host_down("CSP-1"))
    require_valid_rpc(payloads.recheck_vim_connector("CSP-1"))
    with pytest.raises(RpcErrors):
        require_valid_rpc(etree.Element(f"{{{EO_NS}}}confirm-host-down"))  # vim_id mandatory


def _handler(registry: RpcRegistry, name: EoRpc) -> Handler:
    handler = registry.get((EO_NS, name))
    assert handler is not None
    return handler


async def test_the_sink_gets_the_vim_id_and_the_netconf_user() -> None:
    registry = RpcRegistry()
    sink = Sink()
    register_eo_rpcs(registry, sink=sink, validator=require_valid_rpc)
    ctx = RpcContext(core=None, session_id=7, username="alice", request=None)  # type: ignore[arg-type]
    confirm = _handler(registry, EoRpc.CONFIRM_HOST_DOWN)
    await confirm(ctx, payloads.confirm_host_down("CSP-1"))
    recheck = _handler(registry, EoRpc.RECHECK_VIM_CONNECTOR)
    await recheck(ctx, payloads.recheck_vim_connector("CSP-2"))
    assert sink.calls == [("confirm", "CSP-1", "alice"), ("recheck", "CSP-2", None)]


async def test_without_a_lifecycle_the_rpc_is_not_supported() -> None:
    registry = RpcRegistry()
    register_eo_rpcs(registry, sink=None)
    ctx = RpcContext(core=None, session_id=7, username="alice", request=None)  # type: ignore[arg-type]
    with pytest.raises(RpcError, match="needs the lifecycle"):
        await _handler(registry, EoRpc.CONFIRM_HOST_DOWN)(ctx, payloads.confirm_host_down("CSP-1"))
