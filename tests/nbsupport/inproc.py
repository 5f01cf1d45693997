"""Drive a NetconfCore without any transport: rpc text in, rpc-reply element out."""

from __future__ import annotations

import itertools

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS
from esc_orch.northbound.app import build_core
from esc_orch.northbound.core import Limits, NetconfCore
from esc_orch.northbound.rpc import RpcContext
from esc_orch.northbound.session import RpcRequest, build_reply
from nbsupport.memory_backend import MemoryBackend

NC = NC_BASE_NS
ESC = "http://www.cisco.com/esc/esc"


def make_core(backend: MemoryBackend | None = None, *, limits: Limits | None = None) -> NetconfCore:
    return build_core(backend=backend or MemoryBackend(), esc_revision="2024-01-01", limits=limits)


class InprocClient:
    def __init__(self, core: NetconfCore, *, username: str = "admin") -> None:
        self.core = core
        self.terminated: str | None = None
        self.session = core.new_session(username=username, peer="inproc", terminate=self._term)
        self.session_id = self.session.session_id
        self.closed = False
        self._ids = itertools.count(1)

    def _term(self, reason: str) -> None:
        self.terminated = reason

    async def rpc(self, body: str) -> etree._Element:
        rpc = etree.fromstring(
            f'<rpc xmlns="{NC}" xmlns:esc="{ESC}" message-id="{next(self._ids)}">{body}</rpc>'
        )
        request = RpcRequest(message_id=rpc.get("message-id", ""), rpc=rpc, operation=rpc[0])
        ctx = RpcContext(
            core=self.core, session_id=self.session_id, username="admin", request=request
        )
        reply = await self.core.dispatch(ctx)
        self.closed = ctx.close_after_reply
        return build_reply(rpc, reply)

    async def close(self) -> None:
        await self.core.end_session(self.session_id)


def error_tag(reply: etree._Element) -> str | None:
    return reply.findtext(f"{{{NC}}}rpc-error/{{{NC}}}error-tag")


def error_info(reply: etree._Element, name: str) -> str | None:
    return reply.findtext(f"{{{NC}}}rpc-error/{{{NC}}}error-info/{{{NC}}}{name}")


def is_ok(reply: etree._Element) -> bool:
    return reply.find(f"{{{NC}}}ok") is not None
