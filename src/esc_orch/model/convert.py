"""Validated unit XML to frozen pydantic models, driven by the schema tree.

Containers become dicts, lists tuples of dicts, leaves Python scalars by their YANG base
type; absent nodes are left out so the models' own defaults (the YANG defaults) apply.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from esc_orch.model.config import UNIT_MODELS
from esc_orch.model.schema import NodeKind, SchemaNode
from esc_orch.model.units import KINDS, _schema_at

_INTEGER = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _scalar(text: str | None, snode: SchemaNode) -> Any:
    value = text or ""
    if snode.base_type in _INTEGER:
        return int(value)
    if snode.base_type == "boolean":
        return value.strip() == "true"
    if snode.base_type == "leafref":
        return value
    return value


def element_to_dict(element: etree._Element, snode: SchemaNode) -> dict[str, Any]:
    """The children of ``element`` (a container or list entry) as a plain dict."""
    out: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        node = snode.children.get((qname.namespace or "", qname.localname))
        if node is None:
            continue
        if node.kind is NodeKind.LEAF:
            out[node.name] = _scalar(child.text, node)
        elif node.kind is NodeKind.LEAF_LIST:
            out.setdefault(node.name, []).append(_scalar(child.text, node))
        elif node.kind is NodeKind.LIST:
            out.setdefault(node.name, []).append(element_to_dict(child, node))
        else:
            out[node.name] = element_to_dict(child, node)
    return out


def unit_model(kind: str, xml: bytes | etree._Element) -> Any:
    """The pydantic model of one unit (e.g. a :class:`Deployment`) from its XML."""
    element = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    snode = _schema_at(KINDS[kind].steps)
    data = element_to_dict(element, snode)
    for detached in KINDS[kind].detached:
        data.pop(detached, None)
    return UNIT_MODELS[kind].model_validate(data)
