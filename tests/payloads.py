"""Payload helpers shared by the tests (importable as ``payloads``; tests/ is on pythonpath)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from sqlalchemy import select

from esc_orch.model.xmlsafe import parse_xml
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.tables import Base

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


def dump(store: SqlDatastore) -> str:
    """Every row of every table, in a stable order: equal dumps mean an unchanged datastore."""
    lines: list[str] = []
    with store.engine.connect() as connection:
        for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
            rows = connection.execute(select(table)).all()
            lines += [f"{table.name} {tuple(row)!r}" for row in sorted(rows, key=repr)]
    return "\n".join(lines)
