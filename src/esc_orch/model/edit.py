"""The RFC 6241 edit-config engine, pure: an lxml ``<config>`` applied to an lxml data tree.

Three passes, so that a bad request never touches data:

1. :func:`check_edit` walks the request against the schema: unknown elements and namespaces,
   state data, missing list keys, duplicate entries, bad ``operation`` / ``insert``
   attributes, operations nested where they make no sense. It also normalises the request
   (keys first, no blank text) in place.
2. The caller type-checks values with libyang (:func:`esc_orch.model.validate.check_types`).
3. :func:`apply_edit` applies merge / replace / create / delete / remove / none to a data
   tree, reporting ``data-exists`` / ``data-missing``. With ``continue_on_error`` it skips
   the failing subtree and goes on; otherwise it stops at the first error.

The data tree is a ``<data>`` wrapper whose children are top-level nodes; the datastore loads
only the parts an edit touches into it (see :mod:`esc_orch.model.units`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError
from esc_orch.model.schema import (
    ESC_NS,
    NC_NS,
    PREFIXES,
    NodeKind,
    SchemaNode,
    data_roots,
    prefix_of,
)

OPERATION_ATTR = f"{{{NC_NS}}}operation"
YANG_NS = "urn:ietf:params:xml:ns:yang:1"
INSERT_ATTR = f"{{{YANG_NS}}}insert"
#: What get-config shows instead of a secret; sent back unchanged, it keeps the stored value.
SECRET_MASK = "********"


class Operation(StrEnum):
    MERGE = "merge"
    REPLACE = "replace"
    CREATE = "create"
    DELETE = "delete"
    REMOVE = "remove"
    NONE = "none"


_REMOVING = (Operation.DELETE, Operation.REMOVE)
_WRITING = (Operation.CREATE, Operation.REPLACE)


def _err(tag: ErrorTag, message: str, path: str, **kw: object) -> RpcError:
    return RpcError(tag=tag, message=message, path=path, **kw)  # type: ignore[arg-type]


def _key_values(entry: etree._Element, snode: SchemaNode) -> tuple[str, ...] | None:
    values = []
    for key in snode.keys:
        child = entry.find(f"{{{snode.namespace}}}{key}")
        if child is None:
            return None
        values.append(_canonical(child.text or "", snode.children[(snode.namespace, key)]))
    return tuple(values)


def _canonical(text: str, snode: SchemaNode) -> str:
    """Canonical form of a key or leaf-list value, so that '007' and '7' match for integers."""
    if snode.base_type and snode.base_type.startswith(("int", "uint")):
        try:
            return str(int(text.strip()))
        except ValueError:
            return text
    if snode.base_type == "boolean":
        return text.strip()
    return text


def _step(entry: etree._Element, snode: SchemaNode) -> str:
    prefix = prefix_of(snode.namespace)
    step = f"{prefix}:{snode.name}"
    if snode.kind is NodeKind.LIST:
        for key in snode.keys:
            child = entry.find(f"{{{snode.namespace}}}{key}")
            value = (child.text or "") if child is not None else ""
            quote = '"' if "'" in value else "'"
            step += f"[{prefix}:{key}={quote}{value}{quote}]"
    elif snode.kind is NodeKind.LEAF_LIST:
        value = entry.text or ""
        quote = '"' if "'" in value else "'"
        step += f"[.={quote}{value}{quote}]"
    return step


def _children(element: etree._Element) -> Iterator[etree._Element]:
    for child in element:
        if isinstance(child.tag, str):
            yield child


# --------------------------------------------------------------------------------------
# pass 1: structure


def check_edit(config: etree._Element, *, default_operation: Operation) -> list[RpcError]:
    """Check (and normalise in place) the children of a ``<config>`` element."""
    errors: list[RpcError] = []
    _check_children(config, data_roots(), default_operation, "", errors)
    return errors


def _check_children(
    edit: etree._Element,
    schema_children: Mapping[tuple[str, str], SchemaNode],
    inherited: Operation,
    path: str,
    errors: list[RpcError],
) -> None:
    if edit.text is not None and not edit.text.strip():
        edit.text = None
    seen: set[tuple[object, ...]] = set()
    for child in list(edit):
        if not isinstance(child.tag, str):
            edit.remove(child)  # comments, processing instructions
            continue
        if child.tail is not None and not child.tail.strip():
            child.tail = None
        qname = etree.QName(child)
        namespace = qname.namespace or ""
        snode = schema_children.get((namespace, qname.localname))
        if snode is None:
            if namespace not in PREFIXES:
                errors.append(
                    _err(
                        ErrorTag.UNKNOWN_NAMESPACE,
                        f'unknown namespace "{namespace}" of element "{qname.localname}"',
                        path or "/",
                        info={"bad-element": qname.localname, "bad-namespace": namespace},
                    )
                )
            else:
                errors.append(
                    _err(
                        ErrorTag.UNKNOWN_ELEMENT,
                        f'unknown element "{qname.localname}"',
                        f"{path}/{prefix_of(namespace)}:{qname.localname}",
                        info={"bad-element": qname.localname},
                    )
                )
            continue
        if not snode.config:
            errors.append(
                _err(
                    ErrorTag.INVALID_VALUE,
                    f'"{snode.name}" is operational (read-only) data and cannot be edited',
                    f"{path}/{prefix_of(snode.namespace)}:{snode.name}",
                    info={"bad-element": snode.name},
                )
            )
            continue
        op = _operation(
            child, inherited, f"{path}/{prefix_of(snode.namespace)}:{snode.name}", errors
        )
        if op is None:
            continue
        if snode.kind is NodeKind.LIST:
            _keys_first(child, snode)
            identity: tuple[object, ...] | None = _key_values(child, snode)
            if identity is None:
                missing = [k for k in snode.keys if child.find(f"{{{snode.namespace}}}{k}") is None]
                errors.append(
                    _err(
                        ErrorTag.MISSING_ELEMENT,
                        f'list entry "{snode.name}" lacks its key "{missing[0]}"',
                        f"{path}/{prefix_of(snode.namespace)}:{snode.name}",
                        info={"bad-element": missing[0]},
                    )
                )
                continue
        elif snode.kind is NodeKind.LEAF_LIST:
            identity = (_canonical(child.text or "", snode),)
        else:
            identity = ()
        marker = (snode.name, *identity)
        here = f"{path}/{_step(child, snode)}"
        if marker in seen:
            errors.append(
                _err(
                    ErrorTag.BAD_ELEMENT,
                    f'"{snode.name}" appears more than once with the same identity',
                    here,
                    info={"bad-element": snode.name},
                )
            )
            continue
        seen.add(marker)
        if snode.kind in (NodeKind.CONTAINER, NodeKind.LIST):
            _check_children(child, snode.children, op, here, errors)


def _operation(
    element: etree._Element, inherited: Operation, path: str, errors: list[RpcError]
) -> Operation | None:
    """The element's effective operation, or None (with an error) when its attributes are bad."""
    name = etree.QName(element).localname

    def refuse(tag: ErrorTag, message: str, attribute: str, **kw: object) -> None:
        info = {"bad-attribute": attribute, "bad-element": name}
        errors.append(_err(tag, message, path, info=info, **kw))

    insert = element.get(INSERT_ATTR)
    if insert is not None and insert not in ("first", "last"):
        refuse(
            ErrorTag.OPERATION_NOT_SUPPORTED,
            f'insert="{insert}" is not supported (only first and last)',
            "insert",
        )
        return None
    raw = element.get(OPERATION_ATTR)
    if raw is None:
        return inherited
    if raw not in set(Operation):
        refuse(
            ErrorTag.BAD_ATTRIBUTE, f'unknown operation "{raw}"', "operation", type=ErrorType.RPC
        )
        return None
    op = Operation(raw)
    if op is Operation.NONE:
        refuse(ErrorTag.BAD_ATTRIBUTE, 'operation="none" is only a default-operation', "operation")
        return None
    nested_badly = (inherited in _REMOVING and op is not inherited) or (
        inherited in _WRITING and op in _REMOVING
    )
    if nested_badly:
        refuse(
            ErrorTag.BAD_ATTRIBUTE,
            f'operation "{op}" inside a "{inherited}" makes no sense',
            "operation",
        )
        return None
    return op


def _keys_first(entry: etree._Element, snode: SchemaNode) -> None:
    for position, key in enumerate(snode.keys):
        child = entry.find(f"{{{snode.namespace}}}{key}")
        if child is not None and entry.index(child) != position:
            entry.remove(child)
            entry.insert(position, child)


# --------------------------------------------------------------------------------------
# pass 3: application


@dataclass
class EditResult:
    """What applying an edit did; ``errors`` empty means it fully applied."""

    errors: list[RpcError] = field(default_factory=list)


class _Stop(Exception):
    """Raised to abandon the whole edit at the first error (stop-on-error)."""


@dataclass
class _ListIndex:
    """The entries of one list under one parent: by key values, and the last in order."""

    by_key: dict[tuple[str, ...] | None, etree._Element] = field(default_factory=dict)
    last: etree._Element | None = None


class _Skip(Exception):
    """Raised to abandon one subtree and go on (continue-on-error)."""


def apply_edit(
    data: etree._Element,
    config: etree._Element,
    *,
    default_operation: Operation,
    continue_on_error: bool = False,
) -> EditResult:
    """Apply the (checked) ``config`` to ``data`` in place."""
    applier = _Applier(continue_on_error=continue_on_error)
    with contextlib.suppress(_Stop):
        applier.children(data, config, data_roots(), default_operation, "", shadow=None)
    _prune_empty(data)
    return applier.result


def _find_existing(
    target: etree._Element | None, edit_child: etree._Element, snode: SchemaNode
) -> etree._Element | None:
    if target is None:
        return None
    tag = f"{{{snode.namespace}}}{snode.name}"
    if snode.kind is NodeKind.LIST:
        wanted = _key_values(edit_child, snode)
        for candidate in target.iterchildren(tag):
            if _key_values(candidate, snode) == wanted:
                return candidate
        return None
    if snode.kind is NodeKind.LEAF_LIST:
        wanted_value = _canonical(edit_child.text or "", snode)
        for candidate in target.iterchildren(tag):
            if _canonical(candidate.text or "", snode) == wanted_value:
                return candidate
        return None
    return target.find(tag)


@dataclass
class _Applier:
    """One edit's application: walks the request and the data tree side by side.

    ``shadow`` is the content a replace is overwriting: the new content is built by merging
    into an empty node, and a secret sent back as the mask is taken from the shadow.
    """

    continue_on_error: bool
    result: EditResult = field(default_factory=EditResult)
    #: Per parent element and list: key values -> entry, built once on first use, so an
    #: edit of N entries costs O(N) and not O(N²) (a linear scan per entry). The dict holds
    #: the parent's proxy, so lxml hands back the same object (identity hashing holds).
    _index: dict[etree._Element, dict[str, _ListIndex]] = field(default_factory=dict)

    def _entries(self, target: etree._Element, snode: SchemaNode) -> _ListIndex:
        tag = f"{{{snode.namespace}}}{snode.name}"
        lists = self._index.setdefault(target, {})
        index = lists.get(tag)
        if index is None:
            index = _ListIndex()
            for candidate in target.iterchildren(tag):
                index.by_key.setdefault(_key_values(candidate, snode), candidate)
                index.last = candidate
            lists[tag] = index
        return index

    def _find(
        self, target: etree._Element | None, child: etree._Element, snode: SchemaNode
    ) -> etree._Element | None:
        if target is None or snode.kind is not NodeKind.LIST:
            return _find_existing(target, child, snode)
        return self._entries(target, snode).by_key.get(_key_values(child, snode))

    def _removed(self, target: etree._Element, entry: etree._Element, snode: SchemaNode) -> None:
        if snode.kind is not NodeKind.LIST:
            return
        index = self._entries(target, snode)
        index.by_key.pop(_key_values(entry, snode), None)
        if index.last is entry:
            del self._index[target][f"{{{snode.namespace}}}{snode.name}"]  # rebuilt if needed

    def _insert_entry(
        self,
        target: etree._Element,
        child: etree._Element,
        snode: SchemaNode,
        siblings: Mapping[tuple[str, str], SchemaNode],
        *,
        first: bool,
    ) -> etree._Element:
        if snode.kind is not NodeKind.LIST:
            return _insert(target, child.tag, snode, siblings, first=first)
        index = self._entries(target, snode)
        if index.last is None or first:
            new = _insert(target, child.tag, snode, siblings, first=first)
        else:
            new = _sub_element(target, child.tag)
            index.last.addnext(new)
        if not first or index.last is None:
            index.last = new
        return new

    def _keyed(self, target: etree._Element, entry: etree._Element, snode: SchemaNode) -> None:
        """Record ``entry`` (its keys now set) in the index of ``target``."""
        if snode.kind is NodeKind.LIST:
            self._entries(target, snode).by_key[_key_values(entry, snode)] = entry

    def fail(self, tag: ErrorTag, message: str, path: str) -> None:
        self.result.errors.append(_err(tag, message, path))
        if not self.continue_on_error:
            raise _Stop
        raise _Skip

    def children(
        self,
        target: etree._Element,
        edit: etree._Element,
        siblings: Mapping[tuple[str, str], SchemaNode],
        inherited: Operation,
        path: str,
        *,
        shadow: etree._Element | None,
    ) -> None:
        for child in _children(edit):
            qname = etree.QName(child)
            snode = siblings[(qname.namespace or "", qname.localname)]
            if snode.is_key:
                continue  # keys identify their entry; they are never edited on their own
            raw = child.get(OPERATION_ATTR)
            op = Operation(raw) if raw is not None else inherited
            with contextlib.suppress(_Skip):
                self.one(
                    target, child, snode, siblings, op, f"{path}/{_step(child, snode)}", shadow
                )

    def one(  # noqa: PLR0917 (one call site, all positional for readability there)
        self,
        target: etree._Element,
        child: etree._Element,
        snode: SchemaNode,
        siblings: Mapping[tuple[str, str], SchemaNode],
        op: Operation,
        here: str,
        shadow: etree._Element | None,
    ) -> None:
        existing = self._find(target, child, snode)
        previous = self._find(shadow, child, snode)
        if op is Operation.CREATE and existing is not None:
            self.fail(ErrorTag.DATA_EXISTS, f'"{snode.name}" already exists', here)
        if op is Operation.DELETE and existing is None:
            self.fail(ErrorTag.DATA_MISSING, f'"{snode.name}" does not exist', here)
        if op in _REMOVING:
            if existing is not None:
                self._removed(target, existing, snode)
                target.remove(existing)
            return
        if op is Operation.NONE:
            if existing is None:
                if snode.kind is NodeKind.LIST:
                    message = f'"{snode.name}" does not exist (default-operation none)'
                    self.fail(ErrorTag.DATA_MISSING, message, here)
                if snode.kind is not NodeKind.CONTAINER:
                    return
                existing = _insert(target, child.tag, snode, siblings)
            if snode.kind in (NodeKind.CONTAINER, NodeKind.LIST):
                self.children(existing, child, snode.children, op, here, shadow=previous)
            return
        # merge, replace, create
        if existing is None and snode.cases:
            _clear_other_cases(target, snode, siblings)
            self._index.pop(target, None)
        first = child.get(INSERT_ATTR) == "first"
        if snode.kind is NodeKind.LEAF:
            value = child.text
            if snode.secret and value == SECRET_MASK:
                kept = existing if existing is not None else previous
                if kept is None:
                    message = "a secret cannot be set to the mask shown by get-config"
                    self.fail(ErrorTag.INVALID_VALUE, message, here)
                value = kept.text if kept is not None else None
            if existing is None:
                existing = _insert(target, child.tag, snode, siblings)
            existing.text = value
            return
        if snode.kind is NodeKind.LEAF_LIST:
            if existing is None:
                _insert(target, child.tag, snode, siblings, first=first).text = child.text
            return
        if op is Operation.REPLACE or existing is None:
            # Build the new content by merging into an empty node, so nested lists are
            # ordered and secrets handled as for a merge; the old node stays as the shadow.
            if existing is not None:
                fresh = _sub_element(target, child.tag)
                previous = existing
                target.remove(fresh)
                target.replace(existing, fresh)
                index = self._index.get(target, {}).get(fresh.tag)
                if index is not None and index.last is existing:
                    index.last = fresh
            else:
                fresh = self._insert_entry(target, child, snode, siblings, first=first)
            for key in snode.keys:
                key_leaf = child.find(f"{{{snode.namespace}}}{key}")
                if key_leaf is not None:
                    _sub_element(fresh, key_leaf.tag).text = key_leaf.text
            self._keyed(target, fresh, snode)
            existing = fresh
            op = Operation.MERGE
        self.children(existing, child, snode.children, op, here, shadow=previous)


def _clear_other_cases(
    target: etree._Element, snode: SchemaNode, siblings: Mapping[tuple[str, str], SchemaNode]
) -> None:
    """Creating a node of one case deletes the nodes of the choice's other cases (RFC 7950 7.9)."""
    mine = dict(snode.cases)
    for sibling in list(_children(target)):
        qname = etree.QName(sibling)
        other = siblings.get((qname.namespace or "", qname.localname))
        if other is None or other is snode:
            continue
        if any(mine.get(choice) not in (None, case) for choice, case in other.cases):
            target.remove(sibling)


def _sub_element(parent: etree._Element, tag: str) -> etree._Element:
    """A new last child of ``parent``: ESC's elements inherit its namespace map (the default
    namespace), ours get the ``eo`` prefix, so stored units are the same bytes however the
    client spelled the namespace (no spurious change from a prefix lxml would invent)."""
    namespace = etree.QName(tag).namespace or ""
    prefix = PREFIXES.get(namespace)
    if prefix is None or namespace == ESC_NS or parent.nsmap.get(prefix) == namespace:
        return etree.SubElement(parent, tag)
    return etree.SubElement(parent, tag, nsmap={prefix: namespace})


def _insert(
    target: etree._Element,
    tag: str,
    snode: SchemaNode,
    siblings: Mapping[tuple[str, str], SchemaNode],
    *,
    first: bool = False,
) -> etree._Element:
    """Create a ``tag`` child of ``target`` in schema order (keys first), in target's nsmap."""
    same = [c for c in _children(target) if c.tag == tag]
    if same:
        anchor = same[0] if first else same[-1]
        index = target.index(anchor) + (0 if first else 1)
    else:
        index = 0
        for position, existing in enumerate(target):
            if not isinstance(existing.tag, str):
                continue
            qname = etree.QName(existing)
            other = siblings.get((qname.namespace or "", qname.localname))
            if other is None or other.position <= snode.position:
                index = position + 1
    new = _sub_element(target, tag)
    if index < len(target) - 1:
        target.insert(index, new)
    return new


def _prune_empty(data: etree._Element) -> None:
    """Drop non-presence containers left empty by deletes (they carry no information)."""

    def visit(element: etree._Element, children: Mapping[tuple[str, str], SchemaNode]) -> None:
        for child in list(_children(element)):
            qname = etree.QName(child)
            snode = children.get((qname.namespace or "", qname.localname))
            if snode is None or snode.kind in (NodeKind.LEAF, NodeKind.LEAF_LIST):
                continue
            visit(child, snode.children)
            if snode.kind is NodeKind.CONTAINER and not snode.presence and len(child) == 0:
                element.remove(child)

    visit(data, data_roots())


def mask_secrets(data: etree._Element) -> etree._Element:
    """Replace every secret leaf's value by :data:`SECRET_MASK` (get-config shows no secret)."""

    def visit(element: etree._Element, children: Mapping[tuple[str, str], SchemaNode]) -> None:
        for child in _children(element):
            qname = etree.QName(child)
            snode = children.get((qname.namespace or "", qname.localname))
            if snode is None:
                continue
            if snode.secret:
                child.text = SECRET_MASK
            elif snode.holds_secret:
                visit(child, snode.children)

    visit(data, data_roots())
    return data
