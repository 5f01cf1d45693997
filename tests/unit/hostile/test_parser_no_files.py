"""The XML parser never opens a file named by a document (issue 14, defect 4).

``<!DOCTYPE r SYSTEM "/path">`` and external parameter entities used to be loaded by
libxml2 despite ``load_dtd=False``: existing and missing files got different errors (a
file-existence oracle) and a FIFO froze the parse until someone wrote to it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.model.xmlsafe import parse_xml

TEMPLATES = (
    '<!DOCTYPE rpc SYSTEM "{path}"><rpc/>',
    '<?xml version="1.0"?>\n<!-- c --><!DOCTYPE rpc SYSTEM "file://{path}"><rpc/>',
    '<!DOCTYPE rpc [<!ENTITY % x SYSTEM "{path}"> %x;]><rpc/>',
    '<!DOCTYPE rpc [<!ENTITY x SYSTEM "file://{path}">]><rpc>&x;</rpc>',
    '<!doctype rpc PUBLIC "-//x//y" "{path}"><rpc/>',
)


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[dict[str, Path]]:
    existing = tmp_path / "existing.dtd"
    existing.write_text('<!ENTITY leak "secret-content">\n')
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    yield {"existing": existing, "missing": tmp_path / "missing.dtd", "fifo": fifo}
    # Unblock a reader stuck on the FIFO (only if the parser opened it, i.e. the test failed).
    with contextlib.suppress(OSError):
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)


def _error(doc: bytes) -> RpcError:
    """The error of parsing ``doc`` in a thread; fails (instead of hanging) if it blocks."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(parse_xml(doc))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert outcome, "the parser blocked (it opened the named file)"
    assert isinstance(outcome[0], RpcError), f"accepted: {outcome[0]!r}"
    return outcome[0]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_declarations_get_the_same_error_for_any_file(
    paths: dict[str, Path], template: str, encoding: str
) -> None:
    messages = set()
    for path in paths.values():
        doc = template.format(path=path)
        if encoding == "utf-16":
            doc = doc.replace('<?xml version="1.0"?>', "")
            doc = '<?xml version="1.0" encoding="UTF-16"?>' + doc
        err = _error(doc.encode(encoding))
        assert err.tag is ErrorTag.MALFORMED_MESSAGE
        assert "secret-content" not in err.message
        messages.add(err.message)
    assert len(messages) == 1, messages


def test_a_doctype_inside_cdata_is_plain_content() -> None:
    root = parse_xml(b"<rpc><![CDATA[<!DOCTYPE x SYSTEM '/etc/passwd'>]]></rpc>")
    assert root.text == "<!DOCTYPE x SYSTEM '/etc/passwd'>"
