"""Bench: what hostile ``<rpc>`` envelopes cost the session (parse + reply rendering).

Prints, for 1,000 / 10,000 / 30,000 / 100,000 attributes, the seconds to turn one framed
message into its reply (a) with the default limits (refused as too-big, nothing echoed) and
(b) with ``max_rpc_attributes`` raised so that everything is echoed: linear, where lxml's
one-by-one ``set`` took 12.7 s for 30,000. Also a 9 MB attribute and a 1 MB message-id.

Run: .venv/bin/python bench/hostile_rpc.py [--sizes 1000,10000,30000,100000]
"""

from __future__ import annotations

import argparse
import time

from esc_orch.northbound.framing import encode_chunked, encode_eom
from esc_orch.northbound.session import (
    HelloReceived,
    NetconfSession,
    OkReply,
    RpcRequest,
    SendBytes,
    server_capabilities,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
HELLO = (
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1'
    "</capability></capabilities></hello>"
).encode()


def _reply_seconds(message: bytes, *, max_attributes: int) -> tuple[float, int]:
    session = NetconfSession(
        session_id=1,
        capabilities=server_capabilities(esc_revision="x"),
        max_message_size=64 * 1024 * 1024,
        max_rpc_attributes=max_attributes,
    )
    assert isinstance(session.receive_data(encode_eom(HELLO))[0], HelloReceived)
    framed = encode_chunked(message)
    start = time.perf_counter()
    (event,) = session.receive_data(framed)
    if isinstance(event, RpcRequest):
        out = session.render_reply(event, OkReply())
    else:
        assert isinstance(event, SendBytes)
        out = event.data
    return time.perf_counter() - start, len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000,100000")
    args = parser.parse_args()
    print(f"{'attributes':>10} {'refused s':>10} {'reply B':>8} {'echoed s':>9} {'reply B':>9}")
    for n in (int(x) for x in args.sizes.split(",")):
        attrs = " ".join(f'a{i}="v"' for i in range(n))
        message = f'<rpc xmlns="{NC}" message-id="1" {attrs}><get/></rpc>'.encode()
        refused, refused_size = _reply_seconds(message, max_attributes=64)
        echoed, echoed_size = _reply_seconds(message, max_attributes=n + 1)
        print(f"{n:>10} {refused:>10.3f} {refused_size:>8} {echoed:>9.3f} {echoed_size:>9}")
    for name, message in (
        ("9 MB attribute", f'<rpc xmlns="{NC}" message-id="1" a="{"x" * 9_000_000}"><get/></rpc>'),
        ("1 MB message-id", f'<rpc xmlns="{NC}" message-id="{"9" * 1_000_000}"><get/></rpc>'),
    ):
        seconds, size = _reply_seconds(message.encode(), max_attributes=64)
        print(f"{name}: {seconds:.3f} s, reply {size} bytes")


if __name__ == "__main__":
    main()
