"""RFC 6241 ``<filter>`` evaluation for get and get-config: subtree (§6) and XPath (:xpath).

Filtering happens on the ``<data>`` tree the backend returned, so the datastore stays
ignorant of NETCONF filters. Both kinds first *mark* the data nodes to keep and then copy the
marked part of the tree; marking makes overlapping filter branches (two containment nodes
selecting the same list entry) merge naturally instead of duplicating output.

XPath ESC-style paths such as
``/esc_datamodel/opdata/tenants/tenant[name='T']/deployments[deployment_name='D']/state_machine/state``
use bare names: unprefixed name tests are rewritten to the module namespace (the filter
element's default namespace if it declares one, else the esc namespace); prefixes come from
the filter element's namespace declarations. XPath extension functions (EXSLT ``re:test``)
are not available: a regular expression from a client could backtrack without bound.
Ancestors of selected nodes are output with
their list keys so the result stays unambiguous (read from the YANG schema).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from copy import deepcopy
from enum import Enum

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, ErrorType, RpcError
from esc_orch.model.schema import ESC_NS, list_keys
from esc_orch.model.xmlsafe import attribute_items

KeyResolver = Callable[[etree._Element], Collection[str]]

_XPATH_PREFIX = "_esc_default"


class _Mark(Enum):
    PARTIAL = 1  # keep the node, and only the marked descendants
    FULL = 2  # keep the node with its whole subtree


def _default_keys(element: etree._Element) -> Collection[str]:
    """The list keys of ``element`` from the YANG schema."""
    return list_keys(element)


def apply_filter(
    data: etree._Element,
    filter_el: etree._Element | None,
    *,
    key_leaves: KeyResolver = _default_keys,
) -> etree._Element:
    """A new ``<data>`` element holding what ``filter_el`` selects from ``data``."""
    if filter_el is None:
        return deepcopy(data)
    ftype = filter_el.get("type", "subtree")
    # The type attribute may also arrive namespace-qualified (ncclient sends it unqualified).
    ftype = filter_el.get(f"{{{NC_BASE_NS}}}type", ftype)
    marks: dict[etree._Element, _Mark] = {}
    if ftype == "subtree":
        _mark_children(data, list(_elements(filter_el)), marks, top=True)
    elif ftype == "xpath":
        _mark_xpath(data, filter_el, marks, key_leaves)
    else:
        raise RpcError(
            tag=ErrorTag.BAD_ATTRIBUTE,
            type=ErrorType.PROTOCOL,
            message=f"unsupported filter type {ftype!r}",
            info={"bad-attribute": "type", "bad-element": "filter"},
        )
    out = etree.Element(data.tag, nsmap=data.nsmap)  # type: ignore[arg-type]
    _copy_marked(data, out, marks)
    return out


def _elements(parent: etree._Element) -> Iterable[etree._Element]:
    return (child for child in parent if isinstance(child.tag, str))


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _name_matches(data_el: etree._Element, filter_el: etree._Element) -> bool:
    fq, dq = etree.QName(filter_el), etree.QName(data_el)
    if fq.localname != dq.localname:
        return False
    # A filter node without namespace matches the name in every namespace.
    return not fq.namespace or fq.namespace == dq.namespace


def _attributes_match(data_el: etree._Element, filter_el: etree._Element) -> bool:
    if not len(filter_el.attrib):
        return True
    for name, value in attribute_items(filter_el):  # linear, unlike attrib.items()
        if etree.QName(name).namespace == NC_BASE_NS:
            continue
        if data_el.get(name) != value:
            return False
    return True


def _is_content_match(filter_el: etree._Element) -> bool:
    return not any(True for _ in _elements(filter_el)) and bool(_text(filter_el))


def _mark(marks: dict[etree._Element, _Mark], el: etree._Element, mark: _Mark) -> None:
    if marks.get(el) is not _Mark.FULL:
        marks[el] = mark


def _mark_children(
    data_parent: etree._Element,
    filters: list[etree._Element],
    marks: dict[etree._Element, _Mark],
    *,
    top: bool = False,
) -> bool:
    """Mark what the sibling set ``filters`` selects among the children of ``data_parent``.

    Returns False when a content-match node fails (then ``data_parent`` is not selected).
    """
    children = list(_elements(data_parent))
    content = [f for f in filters if _is_content_match(f)]
    others = [f for f in filters if not _is_content_match(f)]
    for cm in content:
        if not any(_name_matches(d, cm) and _text(d) == _text(cm) for d in children):
            return False
    if content and not others and not top:
        _mark(marks, data_parent, _Mark.FULL)
        return True
    selected = False
    for d in children:
        if any(_name_matches(d, cm) and _text(d) == _text(cm) for cm in content):
            _mark(marks, d, _Mark.FULL)
            selected = True
        for f in others:
            if not (_name_matches(d, f) and _attributes_match(d, f)):
                continue
            sub = list(_elements(f))
            if not sub:  # selection node
                _mark(marks, d, _Mark.FULL)
                selected = True
            elif _mark_children(d, sub, marks) and _has_marked_child(d, marks):
                _mark(marks, d, _Mark.PARTIAL)
                selected = True
    return selected or bool(content)


def _has_marked_child(el: etree._Element, marks: dict[etree._Element, _Mark]) -> bool:
    return marks.get(el) is _Mark.FULL or any(child in marks for child in el)


def _copy_marked(
    src: etree._Element, dst: etree._Element, marks: dict[etree._Element, _Mark]
) -> None:
    for child in _elements(src):
        mark = marks.get(child)
        if mark is _Mark.FULL:
            dst.append(deepcopy(child))
        elif mark is _Mark.PARTIAL:
            copy = etree.SubElement(dst, child.tag, nsmap=child.nsmap)  # type: ignore[arg-type]
            for name, value in child.attrib.items():
                copy.set(name, value)
            _copy_marked(child, copy, marks)


# ---------------------------------------------------------------- XPath


def _mark_xpath(
    data: etree._Element,
    filter_el: etree._Element,
    marks: dict[etree._Element, _Mark],
    key_leaves: KeyResolver,
) -> None:
    select = filter_el.get("select")
    if not select:
        raise RpcError(
            tag=ErrorTag.MISSING_ATTRIBUTE,
            type=ErrorType.PROTOCOL,
            message="an xpath filter needs a select attribute",
            info={"bad-attribute": "select", "bad-element": "filter"},
        )
    nsmap = {k: v for k, v in filter_el.nsmap.items() if k is not None}
    default_ns = filter_el.nsmap.get(None)
    if not default_ns or default_ns == NC_BASE_NS:
        default_ns = ESC_NS
    nsmap[_XPATH_PREFIX] = default_ns
    expression = qualify_xpath(select, prefix=_XPATH_PREFIX)
    try:
        # regexp=False: no EXSLT regular expressions (re:test backtracked for seconds per
        # character on the event loop); lxml registers no other extension function here.
        compiled = etree.XPath(
            expression, namespaces=nsmap, smart_strings=True, regexp=False, extensions=None
        )
    except etree.XPathSyntaxError as exc:
        raise _bad_xpath(select, exc) from None
    # Each top-level data node is evaluated as its own document, so that "/esc_datamodel"
    # names the top container as a client expects.
    for top in _elements(data):
        copy = deepcopy(top)
        etree.ElementTree(copy)
        originals = dict(zip(copy.iter(etree.Element), top.iter(etree.Element), strict=True))
        try:
            result = compiled(copy)
        except etree.XPathEvalError as exc:
            raise _bad_xpath(select, exc) from None
        if not isinstance(result, list):
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                type=ErrorType.PROTOCOL,
                message="the XPath expression must select a node-set",
                info={"bad-attribute": "select", "bad-element": "filter"},
            )
        for node in result:
            el = node if isinstance(node, etree._Element) else _parent_of(node)
            original = originals.get(el) if el is not None else None
            if original is None:
                continue
            _mark(marks, original, _Mark.FULL)
            _mark_ancestors(original, data, marks, key_leaves)


def _parent_of(node: object) -> etree._Element | None:
    getparent = getattr(node, "getparent", None)
    parent = getparent() if callable(getparent) else None
    return parent if isinstance(parent, etree._Element) else None


def _bad_xpath(select: str, exc: Exception) -> RpcError:
    return RpcError(
        tag=ErrorTag.INVALID_VALUE,
        type=ErrorType.PROTOCOL,
        message=f"invalid XPath expression {select!r}: {exc}",
        info={"bad-attribute": "select", "bad-element": "filter"},
    )


def _mark_ancestors(
    el: etree._Element,
    data: etree._Element,
    marks: dict[etree._Element, _Mark],
    key_leaves: KeyResolver,
) -> None:
    parent = el.getparent()
    while parent is not None and parent is not data:
        _mark(marks, parent, _Mark.PARTIAL)
        keys = key_leaves(parent)
        for leaf in _elements(parent):
            if etree.QName(leaf).localname in keys and not any(True for _ in _elements(leaf)):
                _mark(marks, leaf, _Mark.FULL)
        parent = parent.getparent()


_TOKEN = re.compile(
    r"""
    (?P<literal>"[^"]*"|'[^']*')
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<name>[A-Za-z_][\w.\-]*(?::(?:[A-Za-z_][\w.\-]*|\*))?)
  | (?P<axis>::)
  | (?P<op>//|!=|<=|>=|\.\.|[/()\[\]@,|+=<>*$.\-])
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)
_OPERATOR_NAMES = frozenset({"and", "or", "div", "mod"})
_NODE_TYPES = frozenset({"node", "text", "comment", "processing-instruction"})


def qualify_xpath(expression: str, *, prefix: str) -> str:
    """Prefix every unprefixed element name test in ``expression`` with ``prefix``.

    Follows the XPath 1.0 lexical rules: names before ``(`` are functions or node types,
    before ``::`` axes, after ``@`` attributes (left alone), after ``$`` variables, and
    ``and``/``or``/``div``/``mod`` are operators where an operator is expected.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                type=ErrorType.PROTOCOL,
                message=f"invalid XPath expression near {expression[pos : pos + 20]!r}",
                info={"bad-attribute": "select", "bad-element": "filter"},
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group()))
        pos = match.end()
    significant = [(i, k, v) for i, (k, v) in enumerate(tokens) if k != "space"]
    out = [v for _, v in tokens]
    for n, (i, kind, value) in enumerate(significant):
        if kind != "name" or ":" in value:
            continue
        prev = significant[n - 1] if n else None
        nxt = significant[n + 1] if n + 1 < len(significant) else None
        if nxt is not None and nxt[2] in {"(", "::"}:
            continue  # function call, node type or axis name
        if prev is not None and prev[2] in {"@", "$"}:
            continue
        if prev is not None and prev[2] == "::" and n >= 2 and significant[n - 2][2] == "attribute":
            continue
        if value in _OPERATOR_NAMES and _operator_expected(prev):
            continue
        if value in _NODE_TYPES and nxt is not None and nxt[2] == "(":
            continue
        out[i] = f"{prefix}:{value}"
    return "".join(out)


def _operator_expected(prev: tuple[int, str, str] | None) -> bool:
    """XPath 1.0 §3.7: a name is an operator name if the previous token is not one of
    ``@ :: ( [ ,`` or an operator."""
    if prev is None:
        return False
    _, kind, value = prev
    if kind == "op" and value not in {")", "]", ".", ".."}:
        return False
    if kind == "axis":
        return False
    return not (kind == "name" and value in _OPERATOR_NAMES)
