"""Data nodes placed in an rpc-reply keep every namespace, on the fast and the rebuild path.

``build_reply`` appends a reparsed copy of a top node that is in its own default namespace
(the datastore's case, fast) and rebuilds the others; both must serialize to the same
namespaces, whatever prefixes the request and the backend tree used.
"""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.northbound.session import (
    DataReply,
    NetconfSession,
    RpcRequest,
    SerializedDataReply,
    build_reply,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ESC = "http://www.cisco.com/esc/esc"
OTHER = "urn:example:other"

PLAIN_RPC = f'<rpc xmlns="{NC}" message-id="7"><get/></rpc>'
PREFIXED_RPC = f'<nc:rpc xmlns:nc="{NC}" message-id="7"><nc:get/></nc:rpc>'

DEFAULT_NS_DATA = (  # the SQL datastore's shape: <nc:data xmlns="esc">
    f'<nc:data xmlns="{ESC}" xmlns:nc="{NC}" xmlns:o="{OTHER}">'
    '<esc_datamodel><tenants><tenant nc:operation="merge"><name>T</name>'
    "<o:note>n</o:note></tenant></tenants></esc_datamodel></nc:data>"
)
PREFIXED_DATA = (  # a top node with a prefix takes the rebuild path
    f'<data xmlns="{NC}" xmlns:e="{ESC}" xmlns:o="{OTHER}">'
    '<e:esc_datamodel><e:tenants><e:tenant xmlns:nc="' + NC + '" nc:operation="merge">'
    "<e:name>T</e:name><o:note>n</o:note></e:tenant></e:tenants></e:esc_datamodel></data>"
)


@pytest.mark.parametrize("rpc_text", [PLAIN_RPC, PREFIXED_RPC])
@pytest.mark.parametrize("data_text", [DEFAULT_NS_DATA, PREFIXED_DATA])
def test_reply_data_keeps_namespaces(rpc_text: str, data_text: str) -> None:
    rpc = etree.fromstring(rpc_text)
    wire = etree.tostring(build_reply(rpc, DataReply(etree.fromstring(data_text))))
    assert f'<esc_datamodel xmlns="{ESC}"'.encode() in wire
    reply = etree.fromstring(wire)
    assert reply.tag == f"{{{NC}}}rpc-reply"
    assert reply.get("message-id") == "7"
    tenant = reply.find(f"{{{NC}}}data/{{{ESC}}}esc_datamodel/{{{ESC}}}tenants/{{{ESC}}}tenant")
    assert tenant is not None
    assert tenant.get(f"{{{NC}}}operation") == "merge"
    assert tenant.findtext(f"{{{ESC}}}name") == "T"
    assert tenant.findtext(f"{{{OTHER}}}note") == "n"


def test_the_backend_tree_is_not_modified_by_the_fast_path() -> None:
    data = etree.fromstring(DEFAULT_NS_DATA)
    before = etree.tostring(data)
    build_reply(etree.fromstring(PLAIN_RPC), DataReply(data))
    assert etree.tostring(data) == before


@pytest.mark.parametrize("rpc_text", [PLAIN_RPC, PREFIXED_RPC])
def test_serialized_data_is_the_same_reply_as_the_tree(rpc_text: str) -> None:
    """The cached get-config bytes spliced into the reply read as the tree path's reply."""
    data = etree.fromstring(DEFAULT_NS_DATA)
    content = b"".join(etree.tostring(child) for child in data)
    rpc = etree.fromstring(rpc_text)
    session = NetconfSession(session_id=1, capabilities=(), max_message_size=1 << 20)
    request = RpcRequest(message_id="7", rpc=rpc, operation=rpc[0])
    spliced = session.render_reply(request, SerializedDataReply(content))
    built = session.render_reply(request, DataReply(data))
    strip = b"]]>]]>"
    got = etree.fromstring(spliced.removesuffix(strip))
    want = etree.fromstring(built.removesuffix(strip))
    assert got.get("message-id") == "7"
    assert etree.tostring(got, method="c14n") == etree.tostring(want, method="c14n")
