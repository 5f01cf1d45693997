"""The ``<rpc>`` envelope is bounded: attributes capped, echo linear (issue 14, defects 3, 9).

30,000 attributes used to cost 6.6 s on the event loop and 100,000 froze the daemon; a 9 MB
attribute and a 1 MB message-id were echoed back in full.
"""

from __future__ import annotations

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS
from esc_orch.northbound.framing import FrameDecoder, FramingMode, encode_chunked, encode_eom
from esc_orch.northbound.session import (
    HelloReceived,
    NetconfCapability,
    NetconfSession,
    OkReply,
    RpcRequest,
    SendBytes,
    server_capabilities,
)

NC = NC_BASE_NS
BIG = 32 * 1024 * 1024
HELLO_11 = (
    f'<hello xmlns="{NC}"><capabilities><capability>{NetconfCapability.BASE_11}</capability>'
    "</capabilities></hello>"
).encode()


def _established(**limits: int) -> NetconfSession:
    s = NetconfSession(
        session_id=1,
        capabilities=server_capabilities(esc_revision="2024-01-01"),
        max_message_size=BIG,
        **limits,
    )
    assert isinstance(s.receive_data(encode_eom(HELLO_11))[0], HelloReceived)
    return s


def _one_reply(s: NetconfSession, rpc: str) -> tuple[etree._Element, int]:
    (event,) = s.receive_data(encode_chunked(rpc.encode()))
    data = s.render_reply(event, OkReply()) if isinstance(event, RpcRequest) else None
    if isinstance(event, SendBytes):
        data = event.data
    assert data is not None
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=BIG)
    decoder.feed(data)
    message = decoder.next_message()
    assert message is not None
    return etree.fromstring(message, etree.XMLParser(huge_tree=True)), len(message)


def _tag(reply: etree._Element) -> str | None:
    return reply.findtext(f".//{{{NC}}}error-tag")


def test_thirty_thousand_attributes_are_refused_as_too_big_without_echo() -> None:
    attrs = " ".join(f'a{i}="v"' for i in range(30_000))
    reply, size = _one_reply(
        _established(), f'<rpc xmlns="{NC}" message-id="7" {attrs}><get/></rpc>'
    )
    assert _tag(reply) == "too-big"
    assert reply.get("message-id") == "7"
    assert reply.get("a1") is None
    assert size < 2000


def test_a_nine_megabyte_attribute_is_not_echoed() -> None:
    value = "x" * (9 * 1024 * 1024)
    reply, size = _one_reply(
        _established(), f'<rpc xmlns="{NC}" message-id="8" huge="{value}"><get/></rpc>'
    )
    assert _tag(reply) == "too-big"
    assert reply.findtext(f".//{{{NC}}}bad-attribute") == "huge"
    assert reply.get("message-id") == "8"
    assert size < 2000


def test_a_one_megabyte_message_id_is_not_echoed() -> None:
    mid = "9" * (1024 * 1024)
    reply, size = _one_reply(_established(), f'<rpc xmlns="{NC}" message-id="{mid}"><get/></rpc>')
    assert _tag(reply) == "too-big"
    assert reply.get("message-id") is None
    assert size < 2000


def test_within_the_limits_every_attribute_is_echoed_exactly() -> None:
    s = _established(max_rpc_attributes=50_000)
    attrs = " ".join(f'ex:a{i}="{i}"' for i in range(20_000))
    rpc = (
        f'<nc:rpc xmlns:nc="{NC}" xmlns:ex="urn:example" message-id="m&amp;&lt;&quot;\'" '
        f'xml:lang="en" tab="a&#9;b&#10;c" {attrs}><nc:get/></nc:rpc>'
    )
    reply, _ = _one_reply(s, rpc)
    assert reply.tag == f"{{{NC}}}rpc-reply"
    assert reply.get("message-id") == "m&<\"'"
    assert reply.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert reply.get("tab") == "a\tb\nc"
    assert reply.get("{urn:example}a19999") == "19999"
    assert len(reply.attrib) == 20_003
    assert reply.find(f"{{{NC}}}ok") is not None


def test_an_element_inside_the_request_with_too_many_attributes_is_too_big() -> None:
    attrs = " ".join(f'nc:a{i}="v"' for i in range(5_000))
    reply, size = _one_reply(
        _established(),
        f'<rpc xmlns="{NC}" xmlns:nc="{NC}" message-id="9"><edit-config><target><running/>'
        f"</target><config><x {attrs}/></config></edit-config></rpc>",
    )
    assert _tag(reply) == "too-big"
    assert reply.findtext(f".//{{{NC}}}bad-element") == "x"
    assert reply.get("message-id") == "9"
    assert size < 2000


def test_an_error_path_keeps_its_esc_prefix_resolvable() -> None:
    from esc_orch.model.errors import ErrorTag, RpcError  # noqa: PLC0415
    from esc_orch.northbound.session import ErrorReply, build_reply  # noqa: PLC0415

    err = RpcError(tag=ErrorTag.DATA_MISSING, message="m", path="/esc:esc_datamodel/esc:tenants")
    rpc = etree.fromstring(f'<rpc xmlns="{NC}" xmlns:e="urn:other" message-id="1"><get/></rpc>')
    reply = etree.fromstring(etree.tostring(build_reply(rpc, ErrorReply(errors=(err,)))))
    path = reply.find(f".//{{{NC}}}error-path")
    assert path is not None
    assert path.nsmap.get("esc") == "http://www.cisco.com/esc/esc"
    assert "e" not in reply.nsmap  # an unused client declaration is not echoed
