"""RFC 6241 subtree filtering and the XPath filter, on plain lxml trees."""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, RpcError
from esc_orch.northbound.filters import apply_filter, qualify_xpath

ESC = "http://www.cisco.com/esc/esc"
DATA = f"""
<data xmlns="{NC_BASE_NS}">
 <esc_datamodel xmlns="{ESC}">
  <tenants>
   <tenant><name>A</name><description>first</description>
    <deployments><deployment><name>d1</name><x>1</x></deployment>
                 <deployment><name>d2</name><x>2</x></deployment></deployments>
   </tenant>
   <tenant><name>B</name><description>second</description></tenant>
  </tenants>
  <opdata><tenants><tenant><name>A</name>
   <deployments><deployment_name>d1</deployment_name><deployment_id>u1</deployment_id>
    <state_machine><state>SERVICE_ACTIVE_STATE</state></state_machine></deployments>
   <deployments><deployment_name>d2</deployment_name><deployment_id>u2</deployment_id>
    <state_machine><state>SERVICE_ERROR_STATE</state></state_machine></deployments>
  </tenant></tenants></opdata>
 </esc_datamodel>
 <other xmlns="urn:other"><leaf attr="v">1</leaf></other>
</data>"""


def _filter(body: str, **attrs: str) -> etree._Element:
    extra = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return etree.fromstring(f'<filter xmlns="{NC_BASE_NS}" {extra}>{body}</filter>')


def _run(body: str, **attrs: str) -> etree._Element:
    data = etree.fromstring(DATA, etree.XMLParser(remove_blank_text=True))
    return apply_filter(data, _filter(body, **attrs))


def _texts(el: etree._Element, local: str) -> list[str]:
    return [n.text or "" for n in el.iter(f"{{*}}{local}")]


def test_no_filter_returns_everything() -> None:
    data = etree.fromstring(DATA)
    assert len(apply_filter(data, None)) == 2


def test_empty_filter_selects_nothing() -> None:
    assert len(_run("")) == 0


def test_selection_node_selects_a_subtree() -> None:
    out = _run(f'<esc_datamodel xmlns="{ESC}"><opdata/></esc_datamodel>')
    assert out[0][0].tag == f"{{{ESC}}}opdata"
    assert len(out[0]) == 1
    assert _texts(out, "state") == ["SERVICE_ACTIVE_STATE", "SERVICE_ERROR_STATE"]


def test_namespace_must_match() -> None:
    assert len(_run('<esc_datamodel xmlns="urn:wrong"/>')) == 0


def test_unqualified_filter_node_matches_any_namespace() -> None:
    out = _run('<other xmlns=""/>')
    assert out[0].tag == "{urn:other}other"


def test_content_match_selects_the_list_entry_whole() -> None:
    out = _run(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>B</name></tenant></tenants>'
        "</esc_datamodel>"
    )
    assert _texts(out, "name") == ["B"]
    assert _texts(out, "description") == ["second"]


def test_content_match_with_selection_sibling() -> None:
    out = _run(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>A</name><description/></tenant>'
        "</tenants></esc_datamodel>"
    )
    tenant = out.find(f".//{{{ESC}}}tenant")
    assert tenant is not None
    assert [etree.QName(c).localname for c in tenant] == ["name", "description"]


def test_nested_content_match_and_containment() -> None:
    out = _run(
        f'<esc_datamodel xmlns="{ESC}"><opdata><tenants><tenant><name>A</name>'
        "<deployments><deployment_name>d2</deployment_name><state_machine/></deployments>"
        "</tenant></tenants></opdata></esc_datamodel>"
    )
    assert _texts(out, "state") == ["SERVICE_ERROR_STATE"]
    assert _texts(out, "deployment_id") == []


def test_content_match_failure_excludes_the_parent() -> None:
    out = _run(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>Z</name></tenant></tenants>'
        "</esc_datamodel>"
    )
    assert len(out) == 0


def test_overlapping_filters_merge_instead_of_duplicating() -> None:
    out = _run(
        f'<esc_datamodel xmlns="{ESC}"><tenants>'
        "<tenant><name>A</name><description/></tenant>"
        "<tenant><name>A</name><deployments/></tenant>"
        "</tenants></esc_datamodel>"
    )
    assert len(out.findall(f".//{{{ESC}}}tenant")) == 1
    assert _texts(out, "description") == ["first"]
    assert len(out.findall(f".//{{{ESC}}}deployment")) == 2


def test_attribute_match() -> None:
    assert len(_run('<other xmlns="urn:other"><leaf attr="v"/></other>')) == 1
    assert len(_run('<other xmlns="urn:other"><leaf attr="w"/></other>')) == 0


def test_xpath_esc_style_path_with_bare_names() -> None:
    select = (
        "/esc_datamodel/opdata/tenants/tenant[name='A']/deployments[deployment_name='d1']"
        "/state_machine/state"
    )
    out = _run("", type="xpath", select=select)
    assert _texts(out, "state") == ["SERVICE_ACTIVE_STATE"]
    # ancestors come with their keys, nothing else
    assert _texts(out, "deployment_name") == ["d1"]
    assert _texts(out, "deployment_id") == []


def test_xpath_prefixes_come_from_the_filter_nsmap() -> None:
    data = etree.fromstring(DATA, etree.XMLParser(remove_blank_text=True))
    flt = etree.fromstring(
        f'<filter xmlns="{NC_BASE_NS}" xmlns:o="urn:other" type="xpath" select="/o:other/o:leaf"/>'
    )
    out = apply_filter(data, flt)
    assert out[0].tag == "{urn:other}other"


def test_xpath_text_node_selects_its_parent() -> None:
    out = _run("", type="xpath", select="//tenant[name='B']/description/text()")
    assert _texts(out, "description") == ["second"]


def test_xpath_must_be_a_node_set() -> None:
    with pytest.raises(RpcError) as info:
        _run("", type="xpath", select="count(//tenant)")
    assert info.value.tag is ErrorTag.INVALID_VALUE


def test_xpath_syntax_error() -> None:
    with pytest.raises(RpcError) as info:
        _run("", type="xpath", select="/esc_datamodel[")
    assert info.value.tag is ErrorTag.INVALID_VALUE


def test_unknown_filter_type() -> None:
    with pytest.raises(RpcError) as info:
        _run("", type="regex")
    assert info.value.tag is ErrorTag.BAD_ATTRIBUTE


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("/a/b", "/p:a/p:b"),
        ("//a[b='x' and c]", "//p:a[p:b='x' and p:c]"),
        ("/a/@b", "/p:a/@b"),
        ("count(a) div 2", "count(p:a) div 2"),
        ("/a/text()", "/p:a/text()"),
        ("/x:a/b", "/x:a/p:b"),
        ("child::a/attribute::b", "child::p:a/attribute::b"),
        ("/a[. = 'and or']", "/p:a[. = 'and or']"),
        ("/*/a", "/*/p:a"),
        ("/and/or", "/p:and/p:or"),
    ],
)
def test_qualify_xpath(expr: str, expected: str) -> None:
    assert qualify_xpath(expr, prefix="p") == expected
