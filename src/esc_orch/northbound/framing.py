"""RFC 6242 message framing, sans-I/O: bytes in, complete messages out.

NETCONF over SSH delimits messages in one of two ways: the base:1.0 end-of-message marker
``]]>]]>`` (used for the hello, and for the whole session when either side only speaks
base:1.0), and base:1.1 chunked framing (``\\n#<len>\\n<data>...\\n##\\n``) once both
hellos announced base:1.1. This module knows nothing about sockets or asyncio (in the spirit
of h11): the transport feeds whatever bytes a read returned, in any split or merge, and pulls
complete messages one at a time. Pulling one at a time matters: the message after the hello
may already sit in the buffer when the session switches to chunked framing, and it must then
be decoded in the new mode (netconfd stalls in exactly that case; we must not).

A size limit is enforced while bytes arrive, before a message is complete, so a peer can never
make us buffer more than ``max_message_size`` bytes (plus one read).
"""

from __future__ import annotations

from enum import StrEnum

EOM = b"]]>]]>"
END_OF_CHUNKS = b"\n##\n"
MAX_CHUNK_SIZE = 4294967295
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
_MAX_CHUNK_DIGITS = len(str(MAX_CHUNK_SIZE))


class FramingMode(StrEnum):
    """How messages are delimited on the wire."""

    EOM = "base:1.0"
    CHUNKED = "base:1.1"


class FramingError(Exception):
    """The peer broke RFC 6242 framing; the session must be closed (no reply is possible)."""


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes, then call :meth:`next_message` until ``None``.

    After a :class:`FramingError` the decoder is poisoned: every later call raises again.
    """

    def __init__(
        self,
        *,
        mode: FramingMode = FramingMode.EOM,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        self._mode = mode
        self._max = max_message_size
        self._buf = bytearray()
        self._scan_from = 0  # EOM mode: where the marker search resumes
        self._chunks: list[bytes] = []  # chunked mode: chunks of the current message
        self._chunked_size = 0
        self._error: FramingError | None = None

    @property
    def mode(self) -> FramingMode:
        return self._mode

    @mode.setter
    def mode(self, mode: FramingMode) -> None:
        """Switch framing for the bytes not yet decoded (call between two messages)."""
        self._mode = mode
        self._scan_from = 0

    @property
    def has_partial_message(self) -> bool:
        """True while some bytes of an incomplete message are buffered."""
        return bool(self._buf) or bool(self._chunks)

    def feed(self, data: bytes) -> None:
        """Append bytes as read from the transport."""
        self._raise_if_failed()
        self._buf += data

    def next_message(self) -> bytes | None:
        """The next complete message, or ``None`` if more bytes are needed.

        Raises :class:`FramingError` on a framing violation or when the message being
        received exceeds the configured maximum size.
        """
        self._raise_if_failed()
        try:
            if self._mode is FramingMode.EOM:
                return self._next_eom()
            return self._next_chunked()
        except FramingError as exc:
            self._error = exc
            self._buf.clear()
            self._chunks.clear()
            raise

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise FramingError(str(self._error))

    def _next_eom(self) -> bytes | None:
        start = max(0, self._scan_from - (len(EOM) - 1))
        idx = self._buf.find(EOM, start)
        if idx < 0:
            self._scan_from = len(self._buf)
            if len(self._buf) > self._max + len(EOM) - 1:
                raise FramingError(f"message exceeds the maximum size of {self._max} bytes")
            return None
        if idx > self._max:
            raise FramingError(f"message exceeds the maximum size of {self._max} bytes")
        message = bytes(self._buf[:idx])
        del self._buf[: idx + len(EOM)]
        self._scan_from = 0
        return message

    def _next_chunked(self) -> bytes | None:
        while True:
            header = self._parse_chunk_header()
            if header is None:
                return None
            header_len, size = header
            if size == 0:  # end-of-chunks
                del self._buf[:header_len]
                if not self._chunks:
                    raise FramingError("end-of-chunks without any chunk")
                message = b"".join(self._chunks)
                self._chunks.clear()
                self._chunked_size = 0
                return message
            if self._chunked_size + size > self._max:
                raise FramingError(f"message exceeds the maximum size of {self._max} bytes")
            if len(self._buf) < header_len + size:
                return None
            self._chunks.append(bytes(self._buf[header_len : header_len + size]))
            self._chunked_size += size
            del self._buf[: header_len + size]

    def _parse_chunk_header(self) -> tuple[int, int] | None:
        """``(header length, chunk size)``; size 0 means end-of-chunks; None: need more."""
        buf = self._buf
        for pos, expected in enumerate(b"\n#"):
            if len(buf) <= pos:
                return None
            if buf[pos] != expected:
                raise FramingError("expected a chunk header ('\\n#')")
        if len(buf) < 3:
            return None
        if buf[2] == ord("#"):
            if len(buf) < 4:
                return None
            if buf[3] != ord("\n"):
                raise FramingError("malformed end-of-chunks marker")
            return 4, 0
        end = buf.find(b"\n", 2, 2 + _MAX_CHUNK_DIGITS + 1)
        if end < 0:
            digits = bytes(buf[2:])
            if len(digits) > _MAX_CHUNK_DIGITS or not digits.isdigit():
                raise FramingError("malformed chunk size")
            return None
        digits = bytes(buf[2:end])
        if not digits.isdigit() or digits.startswith(b"0"):
            raise FramingError(f"invalid chunk size {digits[:16]!r}")
        size = int(digits)
        if size > MAX_CHUNK_SIZE:
            raise FramingError(f"chunk size {size} exceeds {MAX_CHUNK_SIZE}")
        return end + 1, size


def encode_eom(message: bytes) -> bytes:
    """Frame one message for base:1.0."""
    return message + EOM


def encode_chunked(message: bytes, *, max_chunk: int = 1024 * 1024) -> bytes:
    """Frame one message for base:1.1, split into chunks of at most ``max_chunk`` bytes."""
    if not message:
        raise ValueError("a chunked message cannot be empty")
    if not 0 < max_chunk <= MAX_CHUNK_SIZE:
        raise ValueError("invalid chunk size")
    parts: list[bytes] = []
    for start in range(0, len(message), max_chunk):
        chunk = message[start : start + max_chunk]
        parts.append(b"\n#%d\n" % len(chunk))
        parts.append(chunk)
    parts.append(END_OF_CHUNKS)
    return b"".join(parts)


def encode(message: bytes, *, mode: FramingMode) -> bytes:
    """Frame one message in ``mode``."""
    return encode_eom(message) if mode is FramingMode.EOM else encode_chunked(message)
