"""The NETCONF session state machine, without sockets."""

from __future__ import annotations

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, RpcError
from esc_orch.northbound.framing import FrameDecoder, FramingMode, encode_chunked, encode_eom
from esc_orch.northbound.session import (
    CloseConnection,
    DataReply,
    ErrorReply,
    HelloReceived,
    NetconfCapability,
    NetconfSession,
    OkReply,
    RpcRequest,
    SendBytes,
    server_capabilities,
)

NC = NC_BASE_NS
CAPS = server_capabilities(esc_revision="2024-01-01")
HELLO_11 = (
    f'<hello xmlns="{NC}"><capabilities><capability>{NetconfCapability.BASE_10}</capability>'
    f"<capability>{NetconfCapability.BASE_11}</capability></capabilities></hello>"
).encode()
HELLO_10 = (
    f'<hello xmlns="{NC}"><capabilities><capability>{NetconfCapability.BASE_10}</capability>'
    "</capabilities></hello>"
).encode()


def _session() -> NetconfSession:
    return NetconfSession(session_id=7, capabilities=CAPS, max_message_size=4096)


def _established(hello: bytes = HELLO_11) -> NetconfSession:
    s = _session()
    events = s.receive_data(encode_eom(hello))
    assert isinstance(events[0], HelloReceived)
    return s


def _decode(data: bytes, mode: FramingMode) -> etree._Element:
    decoder = FrameDecoder(mode=mode)
    decoder.feed(data)
    message = decoder.next_message()
    assert message is not None
    return etree.fromstring(message)


def test_our_hello_lists_capabilities_and_session_id() -> None:
    hello = _decode(_session().hello_bytes(), FramingMode.EOM)
    caps = [c.text for c in hello.iter(f"{{{NC}}}capability")]
    assert caps == list(CAPS)
    assert "http://www.cisco.com/esc/esc?module=esc&revision=2024-01-01" in caps
    assert NetconfCapability.STARTUP not in caps
    assert hello.findtext(f"{{{NC}}}session-id") == "7"


def test_extra_capabilities_are_appended() -> None:
    caps = server_capabilities(esc_revision="x", extra=[NetconfCapability.NOTIFICATION])
    assert caps[-1] == NetconfCapability.NOTIFICATION


def test_base11_hello_switches_to_chunked_even_with_an_rpc_in_the_same_read() -> None:
    s = _session()
    rpc = f'<rpc xmlns="{NC}" message-id="1"><get/></rpc>'.encode()
    events = s.receive_data(encode_eom(HELLO_11) + encode_chunked(rpc))
    assert isinstance(events[0], HelloReceived)
    assert events[0].framing is FramingMode.CHUNKED
    assert isinstance(events[1], RpcRequest)
    assert events[1].key == (NC, "get")


def test_base10_only_client_keeps_eom_framing() -> None:
    s = _established(HELLO_10)
    assert s.framing is FramingMode.EOM
    events = s.receive_data(encode_eom(f'<rpc xmlns="{NC}" message-id="a"><get/></rpc>'.encode()))
    assert isinstance(events[0], RpcRequest)


def test_hello_without_base_capability_closes() -> None:
    s = _session()
    hello = (
        f'<hello xmlns="{NC}"><capabilities><capability>urn:x</capability></capabilities></hello>'
    )
    events = s.receive_data(encode_eom(hello.encode()))
    assert isinstance(events[0], CloseConnection)
    assert s.closed
    assert s.receive_data(b"anything") == []


def test_garbage_before_hello_closes() -> None:
    events = _session().receive_data(b"GET / HTTP/1.1\r\n\r\n]]>]]>")
    assert isinstance(events[0], CloseConnection)


def test_rpc_instead_of_hello_closes() -> None:
    events = _session().receive_data(encode_eom(f'<rpc xmlns="{NC}" message-id="1"/>'.encode()))
    assert isinstance(events[0], CloseConnection)


def test_client_hello_with_session_id_closes() -> None:
    hello = HELLO_11.replace(b"</hello>", b"<session-id>4</session-id></hello>")
    assert isinstance(_session().receive_data(encode_eom(hello))[0], CloseConnection)


def test_bad_chunk_after_hello_closes() -> None:
    s = _established()
    events = s.receive_data(b"\n#0\n")
    assert isinstance(events[0], CloseConnection)
    assert "framing" in events[0].reason


def _reply_of(event: object, s: NetconfSession) -> etree._Element:
    assert isinstance(event, SendBytes)
    return _decode(event.data, s.framing)


def test_malformed_xml_gets_malformed_message_without_message_id() -> None:
    s = _established()
    events = s.receive_data(encode_chunked(b"<rpc message-id='1'><get></rpc>"))
    reply = _reply_of(events[0], s)
    assert reply.get("message-id") is None
    assert reply.findtext(f".//{{{NC}}}error-tag") == "malformed-message"
    assert not s.closed  # the session survives


def test_entities_are_refused_as_malformed() -> None:
    s = _established()
    bomb = b'<!DOCTYPE r [<!ENTITY a "aaaa">]><rpc message-id="1">&a;</rpc>'
    reply = _reply_of(s.receive_data(encode_chunked(bomb))[0], s)
    assert reply.findtext(f".//{{{NC}}}error-tag") == "malformed-message"


def test_missing_message_id() -> None:
    s = _established()
    events = s.receive_data(encode_chunked(f'<rpc xmlns="{NC}" foo="bar"><get/></rpc>'.encode()))
    reply = _reply_of(events[0], s)
    assert reply.get("foo") == "bar"
    assert reply.findtext(f".//{{{NC}}}error-tag") == "missing-attribute"
    assert reply.findtext(f".//{{{NC}}}bad-attribute") == "message-id"
    assert reply.findtext(f".//{{{NC}}}bad-element") == "rpc"


def test_rpc_without_operation() -> None:
    s = _established()
    events = s.receive_data(encode_chunked(f'<rpc xmlns="{NC}" message-id="2"/>'.encode()))
    reply = _reply_of(events[0], s)
    assert reply.get("message-id") == "2"
    assert reply.findtext(f".//{{{NC}}}error-tag") == "missing-element"


def test_reply_echoes_all_attributes_including_namespaced_ones() -> None:
    s = _established()
    rpc = (
        f'<nc:rpc xmlns:nc="{NC}" xmlns:ex="urn:example" message-id="101" ex:user-id="fred" '
        'plain="1"><nc:get/></nc:rpc>'
    ).encode()
    (request,) = s.receive_data(encode_chunked(rpc))
    assert isinstance(request, RpcRequest)
    reply = _decode(s.render_reply(request, OkReply()), s.framing)
    assert reply.tag == f"{{{NC}}}rpc-reply"
    assert reply.get("message-id") == "101"
    assert reply.get("{urn:example}user-id") == "fred"
    assert reply.get("plain") == "1"
    assert reply.find(f"{{{NC}}}ok") is not None


def test_data_and_error_replies() -> None:
    s = _established()
    (request,) = s.receive_data(
        encode_chunked(f'<rpc xmlns="{NC}" message-id="3"><get/></rpc>'.encode())
    )
    assert isinstance(request, RpcRequest)
    data = etree.Element(f"{{{NC}}}data")
    etree.SubElement(data, "{urn:x}thing").text = "v"
    reply = _decode(s.render_reply(request, DataReply(data)), s.framing)
    assert reply.findtext(f"{{{NC}}}data/{{urn:x}}thing") == "v"
    err = RpcError(tag=ErrorTag.INVALID_VALUE, message="bad", path="/x", info={"bad-element": "y"})
    reply = _decode(s.render_reply(request, ErrorReply(errors=(err, err))), s.framing)
    errors = reply.findall(f"{{{NC}}}rpc-error")
    assert len(errors) == 2
    assert errors[0].findtext(f"{{{NC}}}error-path") == "/x"
    assert errors[0].findtext(f"{{{NC}}}error-info/{{{NC}}}bad-element") == "y"


def test_message_split_byte_by_byte_after_hello() -> None:
    s = _established()
    wire = encode_chunked(f'<rpc xmlns="{NC}" message-id="9"><get/></rpc>'.encode())
    events = []
    for i in range(len(wire)):
        events.extend(s.receive_data(wire[i : i + 1]))
        if i < len(wire) - 1:
            assert s.has_partial_message
    assert len(events) == 1
    assert isinstance(events[0], RpcRequest)


def test_data_from_a_prefixed_backend_tree_keeps_its_namespaces() -> None:
    # A backend returning <nc:data xmlns="esc"> inside a reply to an nc:-prefixed rpc
    # (ncclient's form) once serialized as <data xmlns="esc">, i.e. the wrong namespace.
    s = _established()
    rpc = f'<nc:rpc xmlns:nc="{NC}" message-id="1"><nc:get/></nc:rpc>'.encode()
    (request,) = s.receive_data(encode_chunked(rpc))
    assert isinstance(request, RpcRequest)
    esc = "http://www.cisco.com/esc/esc"
    data = etree.fromstring(
        f'<nc:data xmlns="{esc}" xmlns:nc="{NC}">'
        "<esc_datamodel><tenants/></esc_datamodel></nc:data>"
    )
    wire = s.render_reply(request, DataReply(data))
    assert b'<esc_datamodel xmlns="http://www.cisco.com/esc/esc">' in wire
    reply = _decode(wire, s.framing)
    assert reply.find(f"{{{NC}}}data/{{{esc}}}esc_datamodel/{{{esc}}}tenants") is not None
