"""Property-based tests of subtree and XPath filters (hypothesis).

For random data trees and random filters: the output is always part of the data (every
output node exists at the same place in the input, with the same text), filtering the
output again changes nothing, and a hostile XPath expression gets an ``RpcError`` at worst.
"""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, RpcError
from esc_orch.northbound.filters import apply_filter

NS = "urn:prop"
NAMES = ["a", "b", "c", "name", "x"]
TEXTS = ["", "1", "2", "v"]


def _keys(_: etree._Element) -> Collection[str]:
    return ("name",)


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> etree._Element:
    el = etree.Element(f"{{{NS}}}{draw(st.sampled_from(NAMES))}", nsmap={None: NS})
    if depth == 0 or draw(st.booleans()):
        el.text = draw(st.sampled_from(TEXTS)) or None
        return el
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        el.append(draw(trees(depth=depth - 1)))
    return el


def _data(children: list[etree._Element]) -> etree._Element:
    data = etree.Element(f"{{{NC_BASE_NS}}}data", nsmap={None: NC_BASE_NS})
    for child in children:
        data.append(child)
    return data


def _filter(children: list[etree._Element]) -> etree._Element:
    flt = etree.Element(f"{{{NC_BASE_NS}}}filter", nsmap={None: NC_BASE_NS})
    flt.set("type", "subtree")
    for child in children:
        flt.append(child)
    return flt


def _paths(root: etree._Element) -> set[tuple[tuple[str, str], ...]]:
    """Every node as the path of (tag, text) from the top, for an 'is part of' check."""
    out: set[tuple[tuple[str, str], ...]] = set()

    def walk(el: etree._Element, prefix: tuple[tuple[str, str], ...]) -> None:
        here = (*prefix, (str(el.tag), (el.text or "").strip() if len(el) == 0 else ""))
        out.add(here)
        for child in el:
            walk(child, here)

    for top in root:
        walk(top, ())
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.lists(trees(), max_size=3), flt=st.lists(trees(depth=2), max_size=3))
def test_subtree_output_is_part_of_the_data_and_stable(
    data: list[etree._Element], flt: list[etree._Element]
) -> None:
    source = _data(data)
    out = apply_filter(source, _filter(flt), key_leaves=_keys)
    assert _paths(out) <= _paths(source)
    again = apply_filter(
        out, _filter([etree.fromstring(etree.tostring(f)) for f in flt]), key_leaves=_keys
    )
    assert etree.tostring(again) == etree.tostring(out)


@settings(max_examples=300, deadline=None)
@given(data=st.lists(trees(), max_size=3))
def test_no_filter_is_everything_and_an_empty_filter_nothing(data: list[etree._Element]) -> None:
    source = _data(data)
    assert etree.tostring(apply_filter(source, None)) == etree.tostring(source)
    assert len(apply_filter(source, _filter([]), key_leaves=_keys)) == 0


XPATH_ATOMS = [
    "/",
    "//",
    "a",
    "b",
    "name",
    "*",
    "..",
    ".",
    "@x",
    "[",
    "]",
    "(",
    ")",
    "=",
    "'1'",
    "1",
    "count(",
    "text()",
    "|",
    " and ",
    " or ",
    "re:test(",
    ",",
    "$v",
    "::",
    "child",
    "ancestor",
    "node()",
    "-",
    "contains(",
    "<",
    ">",
]


@settings(max_examples=500, deadline=None)
@given(
    data=st.lists(trees(), min_size=1, max_size=2),
    parts=st.lists(st.sampled_from(XPATH_ATOMS), min_size=1, max_size=12),
)
def test_any_xpath_gives_part_of_the_data_or_an_rpc_error(
    data: list[etree._Element], parts: list[str]
) -> None:
    source = _data(data)
    flt = etree.Element(f"{{{NC_BASE_NS}}}filter", nsmap={None: NC_BASE_NS, "p": NS})
    flt.set("type", "xpath")
    flt.set("select", "".join(parts))
    try:
        out = apply_filter(source, flt, key_leaves=_keys)
    except RpcError:
        return
    assert _paths(out) <= _paths(source)
