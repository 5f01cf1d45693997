"""The hand-written hostile corpus, replayed through the sans-I/O session (issue 14).

Every case gets the outcome the server owes it, and nothing escapes as an exception.
"""

from __future__ import annotations

import os

import pytest
from lxml import etree

from esc_orch.northbound.framing import FrameDecoder, FramingMode, encode_chunked, encode_eom
from esc_orch.northbound.session import (
    CloseConnection,
    HelloReceived,
    NetconfSession,
    RpcRequest,
    SendBytes,
    server_capabilities,
)
from nbsupport.hostile import NC, Case, corpus

HELLO = (
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1'
    "</capability></capabilities></hello>"
).encode()
MAX = 16 * 1024 * 1024


def _outcome(case: Case) -> str:
    session = NetconfSession(
        session_id=1, capabilities=server_capabilities(esc_revision="x"), max_message_size=MAX
    )
    assert isinstance(session.receive_data(encode_eom(HELLO))[0], HelloReceived)
    data = case.data if case.raw else encode_chunked(case.data)
    events = session.receive_data(data, parse=False)
    assert len(events) == 1, events
    (event,) = events
    if not isinstance(event, CloseConnection):
        event = session.handle_rpc_message(event)  # type: ignore[arg-type]
    if isinstance(event, CloseConnection):
        return "close"
    if isinstance(event, RpcRequest):
        return "request"
    assert isinstance(event, SendBytes)
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=MAX)
    decoder.feed(event.data)
    message = decoder.next_message()
    assert message is not None
    assert len(message) < 4000, "an error reply must not echo the hostile input"
    reply = etree.fromstring(message)
    return f"error:{reply.findtext(f'.//{{{NC}}}error-tag')}"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("hostile")
    fifo = root / "fifo"
    os.mkfifo(fifo)
    existing = root / "existing.dtd"
    existing.write_text('<!ENTITY leak "file-content">')
    return {c.name: c for c in corpus(fifo=str(fifo), existing=str(existing))}


@pytest.mark.parametrize("name", [c.name for c in corpus()])
def test_hostile_input_gets_its_owed_outcome(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    assert _outcome(case) == case.expect


def test_the_file_oracle_is_closed(cases: dict[str, Case]) -> None:
    """Existing file, missing file and FIFO: byte-identical replies."""
    replies = set()
    for name in (
        "DOCTYPE SYSTEM existing file",
        "DOCTYPE SYSTEM missing file",
        "DOCTYPE SYSTEM FIFO",
    ):
        session = NetconfSession(session_id=1, capabilities=("urn:ietf:params:netconf:base:1.1",))
        session.receive_data(encode_eom(HELLO))
        (event,) = session.receive_data(encode_chunked(cases[name].data))
        assert isinstance(event, SendBytes)
        replies.add(event.data)
    assert len(replies) == 1
