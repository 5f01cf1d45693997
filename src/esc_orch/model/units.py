"""Configuration units: the pieces the datastore stores, loads and validates one by one.

Validation cost must not grow with the whole configuration (netconfd re-validates its whole
datastore on every edit: 1.9 s per edit at 10,000 list entries). So the configuration is cut
into units — one flavor, image, network, tenant (without its deployments), deployment or VIM
connector each — and an edit loads only the units it touches, the units they reference
(leafref targets) and the units that reference a deleted one. This module is the pure part:
which units an edit touches, cutting a tree into units, assembling units into a tree, and
the references a unit holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass

from lxml import etree

from esc_orch.model.edit import OPERATION_ATTR, Operation
from esc_orch.model.schema import ESC_NS, NC_NS, NodeKind, SchemaNode, data_roots

_WHOLE = (Operation.REPLACE, Operation.CREATE, Operation.DELETE, Operation.REMOVE)


@dataclass(frozen=True, slots=True)
class UnitKind:
    name: str
    #: Element names from the top-level node down to the unit's list.
    steps: tuple[str, ...]
    #: Kind of the unit this one nests in (deployments nest in tenants).
    parent: str | None = None
    #: Child containers stored as units of their own.
    detached: tuple[str, ...] = ()
    #: The escEvent noun for create/delete events (CREATE_<noun>), if any.
    event_noun: str | None = None


UNIT_KINDS: tuple[UnitKind, ...] = (
    UnitKind("flavor", ("esc_datamodel", "flavors", "flavor"), event_noun="FLAVOR"),
    UnitKind("image", ("esc_datamodel", "images", "image"), event_noun="IMAGE"),
    UnitKind("network", ("esc_datamodel", "networks", "network"), event_noun="NETWORK"),
    UnitKind(
        "tenant",
        ("esc_datamodel", "tenants", "tenant"),
        detached=("deployments",),
        event_noun="TENANT",
    ),
    UnitKind(
        "deployment",
        ("esc_datamodel", "tenants", "tenant", "deployments", "deployment"),
        parent="tenant",
    ),
    UnitKind(
        "vim_connector",
        ("esc_system_config", "vim_connectors", "vim_connector"),
        event_noun="VIM_CONNECTOR",
    ),
)
KINDS: Mapping[str, UnitKind] = {kind.name: kind for kind in UNIT_KINDS}


@dataclass(frozen=True, slots=True, order=True)
class UnitId:
    kind: str
    key: tuple[str, ...]

    @property
    def text_key(self) -> str:
        """The key as stored: values joined by '/', which no name may contain."""
        return "/".join(self.key)

    @property
    def parent(self) -> UnitId | None:
        parent = KINDS[self.kind].parent
        return UnitId(parent, self.key[:-1]) if parent else None

    def __str__(self) -> str:
        return f"{self.kind}[{self.text_key}]"


@dataclass(frozen=True, slots=True)
class Wildcard:
    """Every unit of ``kind`` whose key starts with ``prefix`` (a replace/delete above units)."""

    kind: str
    prefix: tuple[str, ...]


def _q(name: str) -> str:
    return f"{{{ESC_NS}}}{name}"


def _schema_at(steps: tuple[str, ...]) -> SchemaNode:
    node = data_roots()[(ESC_NS, steps[0])]
    for step in steps[1:]:
        node = node.children[(ESC_NS, step)]
    return node


def _key_of(entry: etree._Element, list_node: SchemaNode) -> str:
    key = entry.find(_q(list_node.keys[0]))
    return (key.text or "") if key is not None else ""


# --------------------------------------------------------------------------------------
# what an edit touches


def touched(
    config: etree._Element, *, default_operation: Operation
) -> tuple[set[UnitId], set[Wildcard]]:
    """The units an edit may change: named ones, and wildcards for subtrees it replaces."""
    ids: set[UnitId] = set()
    wildcards: set[Wildcard] = set()
    for top in config:
        if not isinstance(top.tag, str):
            continue
        _walk_touch(top, (etree.QName(top).localname,), (), default_operation, ids, wildcards)
    return ids, wildcards


def _walk_touch(  # noqa: PLR0917 (internal recursion)
    element: etree._Element,
    steps: tuple[str, ...],
    key: tuple[str, ...],
    inherited: Operation,
    ids: set[UnitId],
    wildcards: set[Wildcard],
) -> None:
    raw = element.get(OPERATION_ATTR)
    op = Operation(raw) if raw in set(Operation) else inherited
    unit = next((k for k in UNIT_KINDS if k.steps == steps), None)
    if unit is not None:
        key = (*key, _key_of(element, _schema_at(steps)))
        ids.add(UnitId(unit.name, key))
    below = [k for k in UNIT_KINDS if k.steps[: len(steps)] == steps and len(k.steps) > len(steps)]
    if op in _WHOLE:  # the whole subtree is replaced or removed: every unit below is touched
        for kind in below:
            wildcards.add(Wildcard(kind.name, key))
        return
    for child in element:
        if isinstance(child.tag, str):
            name = etree.QName(child).localname
            if any(k.steps[: len(steps) + 1] == (*steps, name) for k in below):
                _walk_touch(child, (*steps, name), key, op, ids, wildcards)


# --------------------------------------------------------------------------------------
# cutting and assembling


def canonical(element: etree._Element) -> bytes:
    """Deterministic bytes for a unit (exclusive C14N: equal content, equal bytes)."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def split(data: etree._Element) -> dict[UnitId, bytes]:
    """Cut a ``<data>`` tree into units (canonical bytes), detaching nested units."""
    units: dict[UnitId, bytes] = {}
    for kind in UNIT_KINDS:
        for key, entry in _entries(data, kind):
            unit = _copy_without(entry, kind.detached) if kind.detached else entry
            units[UnitId(kind.name, key)] = canonical(unit)
    return units


def _copy_without(entry: etree._Element, detached: tuple[str, ...]) -> etree._Element:
    """A copy of ``entry`` without its ``detached`` children, which are never copied: a
    tenant holding 10,000 deployments costs what its own leaves cost."""
    skip = {_q(name) for name in detached}
    copy = etree.Element(entry.tag, nsmap=entry.nsmap)  # type: ignore[arg-type]
    for name, value in entry.attrib.items():
        copy.set(name, value)
    copy.text = entry.text
    for child in entry:
        if child.tag not in skip:
            copy.append(deepcopy(child))
    return copy


def _entries(
    data: etree._Element, kind: UnitKind
) -> Iterator[tuple[tuple[str, ...], etree._Element]]:
    def walk(
        element: etree._Element, depth: int, key: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], etree._Element]]:
        name = kind.steps[depth]
        node = _schema_at(kind.steps[: depth + 1])
        for child in element.iterchildren(_q(name)):
            child_key = key
            if node.kind is NodeKind.LIST:
                child_key = (*key, _key_of(child, node))
            if depth == len(kind.steps) - 1:
                yield child_key, child
            else:
                yield from walk(child, depth + 1, child_key)

    yield from walk(data, 0, ())


def new_data() -> etree._Element:
    """An empty ``<data>`` wrapper whose children get the esc namespace as default."""
    return etree.Element(f"{{{NC_NS}}}data", nsmap={None: ESC_NS, "nc": NC_NS})  # type: ignore[dict-item]


def assemble(
    units: Iterable[tuple[UnitId, bytes]], data: etree._Element | None = None
) -> etree._Element:
    """Graft units into a ``<data>`` tree, creating the containers and parent entries needed.

    Parents must come before their children (sort by kind order); a child whose parent unit
    is absent gets a key-only parent entry.
    """
    root = new_data() if data is None else data
    order = {kind.name: i for i, kind in enumerate(UNIT_KINDS)}
    for unit_id, xml in sorted(units, key=lambda item: (order[item[0].kind], item[0].key)):
        kind = KINDS[unit_id.kind]
        parent = root
        key_index = 0
        for depth, name in enumerate(kind.steps[:-1]):
            node = _schema_at(kind.steps[: depth + 1])
            if node.kind is NodeKind.LIST:
                wanted = unit_id.key[key_index]
                key_index += 1
                found = None
                for entry in parent.iterchildren(_q(name)):
                    if _key_of(entry, node) == wanted:
                        found = entry
                        break
                if found is None:
                    found = etree.SubElement(parent, _q(name))
                    etree.SubElement(found, _q(node.keys[0])).text = wanted
                parent = found
            else:
                existing = parent.find(_q(name))
                parent = existing if existing is not None else etree.SubElement(parent, _q(name))
        parent.append(etree.fromstring(xml))
    return root


# --------------------------------------------------------------------------------------
# references between units


@dataclass(frozen=True, slots=True)
class Reference:
    """A leafref leaf inside units of ``source`` pointing at the key of ``target`` units."""

    source: str
    xpath: str
    target: str


def _references() -> tuple[Reference, ...]:
    refs: list[Reference] = []
    for kind in UNIT_KINDS:
        root = _schema_at(kind.steps)

        def walk(node: SchemaNode, rel: tuple[str, ...], kind: UnitKind = kind) -> None:
            for child in node.children.values():
                if child.name in kind.detached and node is _schema_at(kind.steps):
                    continue
                path = (*rel, child.name)
                if child.leafref and child.leafref.startswith("/"):
                    target_steps = tuple(s.split(":", 1)[-1] for s in child.leafref.split("/") if s)
                    for target in UNIT_KINDS:
                        if target.steps == target_steps[:-1]:
                            refs.append(
                                Reference(
                                    kind.name, "/".join(f"esc:{p}" for p in path), target.name
                                )
                            )
                walk(child, path)

        walk(root, ())
    return tuple(refs)


REFERENCES: tuple[Reference, ...] = _references()
#: Per unit kind, its references with their XPath compiled once (compiling it on every call
#: cost more than the lookup: references_of runs several times per edited unit).
_COMPILED: dict[str, tuple[tuple[Reference, etree.XPath], ...]] = {}
for _ref in REFERENCES:
    _COMPILED.setdefault(_ref.source, ())
    _COMPILED[_ref.source] += (
        (_ref, etree.XPath(f"{_ref.xpath}/text()", namespaces={"esc": ESC_NS})),
    )


def references_of(unit_id: UnitId, xml: bytes) -> set[UnitId]:
    """The units that ``xml`` (a unit of ``unit_id.kind``) references through leafrefs."""
    return set(_references_of(unit_id.kind, xml))


@functools.lru_cache(maxsize=256)
def _references_of(kind: str, xml: bytes) -> frozenset[UnitId]:
    """Cached: one edit asks for the same unit's references several times (its validation,
    its leafref rows, the running image before and after), each a parse of its XML."""
    compiled = _COMPILED.get(kind)
    if not compiled:
        return frozenset()
    element = etree.fromstring(xml)
    found: set[UnitId] = set()
    for ref, xpath in compiled:
        values = xpath(element)
        for value in values if isinstance(values, list) else ():
            found.add(UnitId(ref.target, (str(value),)))
    return frozenset(found)
    element = etree.fromstring(xml)
    for ref, xpath in compiled:
        values = xpath(element)
        for value in values if isinstance(values, list) else ():
            found.add(UnitId(ref.target, (str(value),)))
    return found


def unit_of_path(path: str | None) -> UnitId | None:
    """The unit an error path points into (the deepest unit kind that matches)."""
    if not path:
        return None
    steps: list[tuple[str, str | None]] = []
    for raw in path.strip("/").split("/"):
        name, _, pred = raw.partition("[")
        value = None
        if pred:
            value = pred.split("=", 1)[1].rstrip("]").strip("'\"") if "=" in pred else None
        steps.append((name.split(":", 1)[-1], value))
    best: UnitId | None = None
    for kind in UNIT_KINDS:
        if len(steps) < len(kind.steps):
            continue
        if tuple(s[0] for s in steps[: len(kind.steps)]) != kind.steps:
            continue
        key = tuple(
            v or ""
            for (name, v), depth in zip(steps, range(len(kind.steps)), strict=False)
            if _schema_at(kind.steps[: depth + 1]).kind is NodeKind.LIST
        )
        if best is None or len(KINDS[best.kind].steps) < len(kind.steps):
            best = UnitId(kind.name, key)
    return best
