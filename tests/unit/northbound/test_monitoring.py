"""Schema discovery (RFC 6022 get-schema and netconf-state, RFC 8525 YANG library).

The state the server reports is validated with libyang against the real IETF modules, and
the schema texts it hands out are parsed back by libyang: a client can build on them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import libyang
import pytest
from lxml import etree

from esc_orch.model.schema import ESC_REVISION
from esc_orch.northbound.monitoring import NCM_NS, YANGLIB_NS, schema_catalog
from nbsupport.inproc import NC, InprocClient, error_info, error_tag, make_core

IETF_DIR = Path(sys.prefix) / "share" / "yang" / "modules" / "ietf"
ESC_TEXT = (Path(__file__).resolve().parents[3] / "yang" / "esc.yang").read_text()


def _get_schema(body: str) -> str:
    return f'<get-schema xmlns="{NCM_NS}">{body}</get-schema>'


async def test_get_schema_returns_the_esc_module_text() -> None:
    c = InprocClient(make_core())
    reply = await c.rpc(
        _get_schema(
            f"<identifier>esc</identifier><version>{ESC_REVISION}</version><format>yang</format>"
        )
    )
    text = reply.findtext(f"{{{NCM_NS}}}data")
    assert text is not None and text.startswith("module esc {")
    assert text == ESC_TEXT


async def test_every_listed_schema_can_be_fetched_and_parsed(tmp_path: Path) -> None:
    c = InprocClient(make_core())
    reply = await c.rpc(
        f'<get><filter><netconf-state xmlns="{NCM_NS}"><schemas/></netconf-state></filter></get>'
    )
    ids = [
        (s.findtext(f"{{{NCM_NS}}}identifier"), s.findtext(f"{{{NCM_NS}}}version"))
        for s in reply.iter(f"{{{NCM_NS}}}schema")
    ]
    assert ("esc", ESC_REVISION) in ids and ("esc-types", ESC_REVISION) in ids
    for identifier, version in ids:
        got = await c.rpc(
            _get_schema(f"<identifier>{identifier}</identifier><version>{version}</version>")
        )
        (tmp_path / f"{identifier}.yang").write_text(got.findtext(f"{{{NCM_NS}}}data") or "")
    # Only what was fetched: the esc module and its submodule and imports resolve.
    ctx = libyang.Context(str(tmp_path))
    assert ctx.load_module("esc").name() == "esc"


@pytest.mark.parametrize(
    ("body", "tag", "element"),
    [
        ("<identifier>nope</identifier>", "invalid-value", "identifier"),
        (
            "<identifier>esc</identifier><version>1999-01-01</version>",
            "invalid-value",
            "identifier",
        ),
        ("<identifier>esc</identifier><format>xsd</format>", "invalid-value", "format"),
        ("<version>2026-11-27</version>", "missing-element", "identifier"),
        ("<identifier>esc</identifier><colour>red</colour>", "unknown-element", "colour"),
    ],
)
async def test_get_schema_refusals(body: str, tag: str, element: str) -> None:
    reply = await InprocClient(make_core()).rpc(_get_schema(body))
    assert error_tag(reply) == tag
    assert error_info(reply, "bad-element") == element


async def test_sessions_and_statistics_count_rpcs() -> None:
    core = make_core()
    c = InprocClient(core)
    await c.rpc("<get-config><source><running/></source></get-config>")
    await c.rpc("<get-config><source><nowhere/></source></get-config>")  # an rpc-error
    await c.rpc('<frobnicate xmlns="urn:example"/>')  # no such operation
    reply = await c.rpc(f'<get><filter><netconf-state xmlns="{NCM_NS}"/></filter></get>')
    ns = {"m": NCM_NS}
    session = reply.xpath("//m:sessions/m:session", namespaces=ns)[0]
    assert session.findtext("m:username", namespaces=ns) == "admin"
    assert session.findtext("m:transport", namespaces=ns) == "netconf-ssh"
    assert session.findtext("m:in-rpcs", namespaces=ns) == "3"  # the get is counted after
    assert session.findtext("m:in-bad-rpcs", namespaces=ns) == "1"
    assert session.findtext("m:out-rpc-errors", namespaces=ns) == "2"
    stats = reply.xpath("//m:statistics", namespaces=ns)[0]
    assert stats.findtext("m:in-sessions", namespaces=ns) == "1"
    assert stats.findtext("m:in-rpcs", namespaces=ns) == "3"
    caps = [e.text for e in reply.xpath("//m:capabilities/m:capability", namespaces=ns)]
    assert caps == list(core.capabilities)


async def test_locks_are_reported_with_their_holder() -> None:
    c = InprocClient(make_core())
    await c.rpc("<lock><target><candidate/></target></lock>")
    reply = await c.rpc(
        f'<get><filter><netconf-state xmlns="{NCM_NS}"><datastores/></netconf-state></filter></get>'
    )
    ns = {"m": NCM_NS}
    held = reply.xpath(
        "//m:datastore[m:name='candidate']/m:locks/m:global-lock/m:locked-by-session",
        namespaces=ns,
    )
    assert [e.text for e in held] == ["1"]


@pytest.mark.skipif(
    not (IETF_DIR / "ietf-netconf-monitoring.yang").is_file(), reason="no IETF modules"
)
async def test_reported_state_is_valid_against_the_ietf_modules() -> None:
    c = InprocClient(make_core())
    await c.rpc("<lock><target><running/></target></lock>")
    reply = await c.rpc(
        f'<get><filter><netconf-state xmlns="{NCM_NS}"/><yang-library xmlns="{YANGLIB_NS}"/>'
        f'<modules-state xmlns="{YANGLIB_NS}"/></filter></get>'
    )
    data = reply.find(f"{{{NC}}}data")
    assert data is not None and len(data) == 3
    ctx = libyang.Context(str(IETF_DIR))
    ctx.load_module("ietf-netconf-monitoring")
    ctx.load_module("ietf-yang-library")
    xml = "".join(etree.tostring(child).decode() for child in data)
    tree = ctx.parse_data_mem(xml, "xml", no_state=False, strict=True, validate_present=True)
    assert tree is not None
    tree.free()


def test_the_catalog_holds_esc_and_its_submodule() -> None:
    names = {s.identifier: s for s in schema_catalog()}
    assert names["esc-types"].belongs_to == "esc"
    assert names["esc"].version == ESC_REVISION
