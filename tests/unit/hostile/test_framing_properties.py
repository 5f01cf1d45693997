"""Property-based tests of the RFC 6242 framing decoder (hypothesis).

Whatever a peer sends, in whatever splits, the decoder either yields exactly the framed
messages or raises :class:`FramingError` (and stays failed); it never buffers much more than
the maximum message size.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esc_orch.northbound.framing import (
    EOM,
    FrameDecoder,
    FramingError,
    FramingMode,
    encode_chunked,
    encode_eom,
)

MAX = 4096
messages_eom = st.lists(
    st.binary(min_size=0, max_size=300).filter(lambda m: EOM not in m + EOM[:-1]),
    min_size=1,
    max_size=6,
)
messages_chunked = st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=6)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _decode_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        decoder.feed(piece)
        while (message := decoder.next_message()) is not None:
            out.append(message)
    return out


@settings(max_examples=300, deadline=None)
@given(messages=messages_eom, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_eom_round_trip_in_any_split(messages: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_eom(m) for m in messages)
    decoder = FrameDecoder(mode=FramingMode.EOM, max_message_size=MAX)
    assert _decode_all(decoder, _split(wire, cuts)) == messages
    assert not decoder.has_partial_message


@settings(max_examples=300, deadline=None)
@given(
    messages=messages_chunked,
    chunk=st.integers(min_value=1, max_value=700),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_chunked_round_trip_in_any_split(
    messages: list[bytes], chunk: int, cuts: list[int]
) -> None:
    wire = b"".join(encode_chunked(m, max_chunk=chunk) for m in messages)
    decoder = FrameDecoder(mode=FramingMode.CHUNKED, max_message_size=MAX)
    assert _decode_all(decoder, _split(wire, cuts)) == messages
    assert not decoder.has_partial_message


@settings(max_examples=500, deadline=None)
@given(
    mode=st.sampled_from(list(FramingMode)),
    pieces=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [b"\n#", b"\n##\n", b"\n#4\n", b"\n#0\n", b"]]>]]>", b"\n#99999999999\n"]
            ),
        ),
        max_size=20,
    ),
)
def test_garbage_yields_messages_or_a_framing_error_and_stays_bounded(
    mode: FramingMode, pieces: list[bytes]
) -> None:
    decoder = FrameDecoder(mode=mode, max_message_size=256)
    try:
        for piece in pieces:
            decoder.feed(piece)
            while (message := decoder.next_message()) is not None:
                assert len(message) <= 256
            # never more than one maximal message plus one read and a header waits
            assert len(decoder._buf) <= 256 + len(piece) + 16
    except FramingError:
        with pytest.raises(FramingError):  # poisoned for good
            decoder.next_message()


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(min_value=256 + len(EOM), max_value=2000),
    mode=st.sampled_from(list(FramingMode)),
)
def test_an_oversized_message_fails_before_it_is_complete(size: int, mode: FramingMode) -> None:
    """(EOM mode may hold len(EOM) - 1 bytes more: the marker can arrive split.)"""
    decoder = FrameDecoder(mode=mode, max_message_size=256)
    wire = encode_eom(b"x" * size) if mode is FramingMode.EOM else encode_chunked(b"x" * size)
    with pytest.raises(FramingError):
        decoder.feed(wire[: -len(EOM)] if mode is FramingMode.EOM else wire[:-4])
        decoder.next_message()
