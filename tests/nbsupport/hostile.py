"""The hand-written corpus of hostile NETCONF input (issue 14), with what each must get.

Each :class:`Case` is one message sent after a valid base:1.1 hello (or, for ``raw``
cases, bytes sent as they are after the hello), and the outcome the server owes it: an
``rpc-error`` with a given tag, the session closed, or a request handed to the operations.
``tests/unit/hostile/test_hostile_corpus.py`` replays them all; the fuzzer
(``tests/reliability/fuzz.py``) starts from them.
"""

from __future__ import annotations

from dataclasses import dataclass

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ESC = "http://www.cisco.com/esc/esc"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    data: bytes
    #: "error:<tag>", "close" or "request"
    expect: str
    #: True: ``data`` is sent as raw bytes (already framed or deliberately mis-framed)
    raw: bool = False


def _rpc(body: str = "<get/>", attrs: str = 'message-id="1"') -> bytes:
    return f'<rpc xmlns="{NC}" {attrs}>{body}</rpc>'.encode()


def corpus(*, fifo: str = "/nonexistent/fifo", existing: str = "/etc/hostname") -> list[Case]:
    """The cases; ``fifo`` and ``existing`` name a FIFO and a readable file to point at."""
    laughs = (
        '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    )
    cases = [
        Case("plain get", _rpc(), "request"),
        Case("comments and PIs", b"<?xml version='1.0'?><!-- hi --><?pi x?>" + _rpc(), "request"),
        Case(
            "billion laughs",
            (laughs + f'<rpc xmlns="{NC}" message-id="1">&d;</rpc>').encode(),
            "error:malformed-message",
        ),
        Case(
            "XXE file entity",
            f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{existing}">]><rpc xmlns="{NC}" '
            'message-id="1">&x;</rpc>'.encode(),
            "error:malformed-message",
        ),
        Case(
            "DOCTYPE SYSTEM existing file",
            f'<!DOCTYPE rpc SYSTEM "{existing}">'.encode() + _rpc(),
            "error:malformed-message",
        ),
        Case(
            "DOCTYPE SYSTEM missing file",
            b'<!DOCTYPE rpc SYSTEM "/nonexistent/x.dtd">' + _rpc(),
            "error:malformed-message",
        ),
        Case(
            "DOCTYPE SYSTEM FIFO",
            f'<!DOCTYPE rpc SYSTEM "{fifo}">'.encode() + _rpc(),
            "error:malformed-message",
        ),
        Case(
            "external parameter entity",
            f'<!DOCTYPE rpc [<!ENTITY % p SYSTEM "{fifo}"> %p;]>'.encode() + _rpc(),
            "error:malformed-message",
        ),
        Case(
            "network DTD",
            b'<!DOCTYPE rpc SYSTEM "http://127.0.0.1:9/x.dtd">' + _rpc(),
            "error:malformed-message",
        ),
        Case(
            "deep nesting",
            _rpc("<get>" + "<a>" * 5000 + "</a>" * 5000 + "</get>"),
            "error:malformed-message",
        ),
        Case(
            "30,000 attributes",
            _rpc(attrs='message-id="1" ' + " ".join(f'a{i}="v"' for i in range(30_000))),
            "error:too-big",
        ),
        Case(
            "9 MB attribute",
            _rpc(attrs='message-id="1" big="' + "x" * 9_000_000 + '"'),
            "error:too-big",
        ),
        Case(
            "1 MB message-id", _rpc(attrs='message-id="' + "9" * 1_000_000 + '"'), "error:too-big"
        ),
        Case(
            "100,000 namespace declarations",
            _rpc(
                attrs='message-id="1" ' + " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(100_000))
            ),
            "request",
        ),
        Case(
            "5,000 attributes on a config element",
            _rpc(
                "<edit-config><target><running/></target><config><x "
                + " ".join(f'a{i}="v"' for i in range(5_000))
                + "/></config></edit-config>"
            ),
            "error:too-big",
        ),
        Case("no message-id", _rpc(attrs=""), "error:missing-attribute"),
        Case("two operations", _rpc("<get/><get-config/>"), "error:bad-element"),
        Case("no operation", _rpc(""), "error:missing-element"),
        Case("not an rpc", f'<hello xmlns="{NC}"/>'.encode(), "error:malformed-message"),
        Case("not XML", b"GET / HTTP/1.1\r\n\r\n", "error:malformed-message"),
        Case(
            "invalid UTF-8",
            _rpc("<get>\xff\xfe</get>").replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
            "error:malformed-message",
        ),
        Case(
            "UTF-16 DOCTYPE",
            (
                '<?xml version="1.0" encoding="UTF-16"?>'
                f'<!DOCTYPE rpc SYSTEM "{fifo}"><rpc xmlns="{NC}" message-id="1"><get/></rpc>'
            ).encode("utf-16"),
            "error:malformed-message",
        ),
        Case("bad chunk header", b"\n#abc\n<rpc/>\n##\n", "close", raw=True),
        Case("chunk size zero", b"\n#0\n\n##\n", "close", raw=True),
        Case("end of chunks first", b"\n##\n", "close", raw=True),
        Case("chunk larger than the maximum", b"\n#4294967296\n", "close", raw=True),
        Case("chunk with leading zero", b"\n#01\nx\n##\n", "close", raw=True),
        Case("EOM marker in chunked mode", _rpc() + b"]]>]]>", "close", raw=True),
    ]
    return cases
