"""Payload helpers shared by the tests (importable as ``payloads``; tests/ is on pythonpath)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lxml import etree

from esc_orch.model.xmlsafe import parse_xml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
ESC_NS = "http://www.cisco.com/esc/esc"


def config_of(*payloads: str | bytes | Path) -> etree._Element:
    """A NETCONF <config> holding the given payloads (file paths or XML text)."""
    config = etree.Element(f"{{{NC_NS}}}config", nsmap={"nc": NC_NS})
    for payload in payloads:
        raw = payload.read_bytes() if isinstance(payload, Path) else payload
        config.append(parse_xml(raw.encode() if isinstance(raw, str) else raw))
    return config


def esc(body: str) -> str:
    """Wrap ``body`` in an esc_datamodel element with the nc prefix declared."""
    return f'<esc_datamodel xmlns="{ESC_NS}" xmlns:nc="{NC_NS}">{body}</esc_datamodel>'


def dump(data_dir: Path) -> str:
    """Every row of the database, as SQL text: equal dumps mean an unchanged datastore."""
    con = sqlite3.connect(data_dir / "esc-orch.sqlite")
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()
