"""RFC 6242 framing, without sockets: any split, any merge, every malformed header."""

from __future__ import annotations

import pytest

from esc_orch.northbound.framing import (
    EOM,
    FrameDecoder,
    FramingError,
    FramingMode,
    encode_chunked,
    encode_eom,
)

MESSAGES = [b"<hello/>", b"<rpc message-id='1'><get/></rpc>", b"x" * 5000, b"]]>]]" + b"a"]


def _drain(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (msg := decoder.next_message()) is not None:
        out.append(msg)
    return out


@pytest.mark.parametrize("mode", list(FramingMode))
def test_byte_by_byte(mode: FramingMode) -> None:
    wire = b"".join(
        encode_eom(m) if mode is FramingMode.EOM else encode_chunked(m, max_chunk=7)
        for m in MESSAGES
    )
    decoder = FrameDecoder(mode=mode)
    got: list[bytes] = []
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
        got.extend(_drain(decoder))
    assert got == MESSAGES
    assert not decoder.has_partial_message


@pytest.mark.parametrize("mode", list(FramingMode))
def test_many_messages_in_one_read(mode: FramingMode) -> None:
    enc = encode_eom if mode is FramingMode.EOM else encode_chunked
    decoder = FrameDecoder(mode=mode)
    decoder.feed(b"".join(enc(m) for m in MESSAGES * 50))
    assert _drain(decoder) == MESSAGES * 50


def test_switch_to_chunked_with_the_next_rpc_already_buffered() -> None:
    # The client's hello and its first chunked rpc arrive in one read.
    decoder = FrameDecoder()
    decoder.feed(encode_eom(b"<hello/>") + encode_chunked(b"<rpc/>"))
    assert decoder.next_message() == b"<hello/>"
    decoder.mode = FramingMode.CHUNKED
    assert decoder.next_message() == b"<rpc/>"


def test_eom_marker_split_across_reads() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"<a/>]]>]")
    assert decoder.next_message() is None
    decoder.feed(b"]>")
    assert decoder.next_message() == b"<a/>"


def test_chunked_encoder_splits_large_messages() -> None:
    wire = encode_chunked(b"abcdefghij", max_chunk=4)
    assert wire == b"\n#4\nabcd\n#4\nefgh\n#2\nij\n##\n"


@pytest.mark.parametrize(
    "wire",
    [
        b"\n#0\n",  # chunk size 0
        b"\n#012\nabc",  # leading zero
        b"\n#4294967296\n",  # above the maximum chunk size
        b"\n#12345678901",  # too many digits
        b"\n#1a\n",  # not a number
        b"garbage",  # no chunk header at all
        b"\n##\n",  # end-of-chunks without chunks
        b"\n#3\nabc\n#x",  # bad second header
        b"\n#3\nabc##\n",  # missing LF before end-of-chunks
        b"\n#3\nabc\n##x",  # malformed end-of-chunks
    ],
)
def test_bad_chunk_framing(wire: bytes) -> None:
    decoder = FrameDecoder(mode=FramingMode.CHUNKED)
    decoder.feed(wire)
    with pytest.raises(FramingError):
        _drain(decoder)
    with pytest.raises(FramingError):  # poisoned for good
        decoder.next_message()


def test_max_chunk_size_is_accepted_as_a_header() -> None:
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=2**33)
    decoder.feed(b"\n#4294967295\nabc")
    assert decoder.next_message() is None  # waits for the data, no error


def test_chunk_larger_than_max_message_size_fails_before_its_data() -> None:
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=100)
    decoder.feed(b"\n#101\n")
    with pytest.raises(FramingError, match="maximum size"):
        decoder.next_message()


def test_chunks_adding_up_beyond_the_limit() -> None:
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=10)
    decoder.feed(b"\n#6\nabcdef\n#6\n")
    with pytest.raises(FramingError):
        _drain(decoder)


def test_eom_message_beyond_the_limit_fails_without_a_marker() -> None:
    decoder = FrameDecoder(max_message_size=10)
    decoder.feed(b"x" * 10)
    assert decoder.next_message() is None
    decoder.feed(b"y" * 10)
    with pytest.raises(FramingError):
        decoder.next_message()


def test_eom_message_at_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_message_size=10)
    decoder.feed(b"x" * 10 + EOM)
    assert decoder.next_message() == b"x" * 10


def test_eom_scanning_is_linear() -> None:
    # 1 MB fed in 1-byte reads would take minutes if every feed rescanned the buffer.
    decoder = FrameDecoder()
    for _ in range(200_000):
        decoder.feed(b"a")
        assert decoder.next_message() is None
    decoder.feed(EOM)
    assert decoder.next_message() == b"a" * 200_000
