"""Coverage-guided fuzzing (atheris) of the framing decoder, the session and the XML parser.

    .venv/bin/python tests/reliability/fuzz.py --seconds 600        # locally, as long as you like
    .venv/bin/python tests/reliability/fuzz.py --seconds 20         # what CI runs (test_fuzz_ci)

One fuzz target dispatches on the first input byte: (0) bytes fed to a base:1.0
``FrameDecoder`` in random splits, (1) the same in base:1.1 chunked mode, (2) a whole
session (hello, then the rest as raw bytes), (3) ``parse_xml`` of the rest, (4) the rest as a
subtree filter and (5) as an XPath select on a small data tree. Anything but the documented
failures (``FramingError``, ``RpcError``) is a crash, which atheris reports with the input
(saved as ``crash-*`` in the working directory). The seed corpus is the hand-written hostile
corpus (``tests/nbsupport/hostile.py``), trimmed to small inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from lxml import etree

    from esc_orch.model.errors import RpcError
    from esc_orch.model.xmlsafe import parse_xml
    from esc_orch.northbound.filters import apply_filter
    from esc_orch.northbound.framing import FrameDecoder, FramingError, FramingMode, encode_eom
    from esc_orch.northbound.session import NetconfSession, RpcMessage, server_capabilities

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbsupport.hostile import NC, corpus

MAX = 64 * 1024
HELLO = encode_eom(
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1'
    "</capability></capabilities></hello>".encode()
)
DATA = etree.fromstring(
    f'<data xmlns="{NC}"><esc_datamodel xmlns="http://www.cisco.com/esc/esc"><tenants>'
    "<tenant><name>A</name><deployments><deployment><name>d</name></deployment></deployments>"
    "</tenant><tenant><name>B</name></tenant></tenants></esc_datamodel></data>"
)
CAPS = server_capabilities(esc_revision="2024-01-01")


def _keys(_: etree._Element) -> tuple[str, ...]:
    return ("name",)


def _frames(fdp: atheris.FuzzedDataProvider, mode: FramingMode) -> None:
    decoder = FrameDecoder(mode=mode, max_message_size=4096)
    try:
        while fdp.remaining_bytes():
            decoder.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 512)))
            while (message := decoder.next_message()) is not None:
                assert len(message) <= 4096
    except FramingError:
        pass


def _session(rest: bytes) -> None:
    session = NetconfSession(session_id=1, capabilities=CAPS, max_message_size=MAX)
    for event in session.receive_data(HELLO + rest, parse=False):
        if isinstance(event, RpcMessage):
            session.handle_rpc_message(event)


def _filter(rest: bytes, *, xpath: bool) -> None:
    try:
        if xpath:
            flt = etree.Element(f"{{{NC}}}filter", type="xpath")
            flt.set("select", rest.decode("utf-8", "replace").replace("\x00", ""))
        else:
            flt = parse_xml(b'<filter xmlns="%s">' % NC.encode() + rest + b"</filter>")
        apply_filter(DATA, flt, key_leaves=_keys)
    except (RpcError, ValueError):
        pass  # ValueError: lxml refuses a select string that is not XML-safe


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target, rest = data[0] % 6, data[1:]
    if target in (0, 1):
        fdp = atheris.FuzzedDataProvider(rest)
        _frames(fdp, FramingMode.EOM if target == 0 else FramingMode.CHUNKED)
    elif target == 2:
        _session(rest)
    elif target == 3:
        with contextlib.suppress(RpcError):
            parse_xml(rest, max_bytes=MAX)
    else:
        _filter(rest, xpath=target == 5)


def _seed_corpus(directory: Path) -> None:
    for i, case in enumerate(corpus()):
        if len(case.data) <= 4096:
            for target in range(6):
                (directory / f"seed-{i}-{target}").write_bytes(bytes([target]) + case.data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument("--corpus", type=Path, help="corpus directory (kept between runs)")
    args, rest = parser.parse_known_args()
    directory = args.corpus or Path(tempfile.mkdtemp(prefix="esc-fuzz-"))
    directory.mkdir(parents=True, exist_ok=True)
    _seed_corpus(directory)
    argv = [
        sys.argv[0],
        *rest,
        f"-max_total_time={args.seconds}",
        "-rss_limit_mb=1024",
        "-timeout=10",
        str(directory),
    ]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
