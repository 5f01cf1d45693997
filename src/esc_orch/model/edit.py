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
from esc_orch.model.schema import ESC_NS, ESC_PREFIX, NC_NS, NodeKind, SchemaNode, data_roots

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
    step = f"{ESC_PREFIX}:{snode.name}"
    if snode.kind is NodeKind.LIST:
        for key in snode.keys:
            child = entry.find(f"{{{snode.namespace}}}{key}")
            value = (child.text or "") if child is not None else ""
            quote = '"' if "'" in value else "'"
            step += f"[{ESC_PREFIX}:{key}={quote}{value}{quote}]"
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
            if namespace != ESC_NS:
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
                        f"{path}/{ESC_PREFIX}:{qname.localname}",
                        info={"bad-element": qname.localname},
                    )
                )
            continue
        if not snode.config:
            errors.append(
                _err(
                    ErrorTag.INVALID_VALUE,
                    f'"{snode.name}" is operational (read-only) data and cannot be edited',
                    f"{path}/{ESC_PREFIX}:{snode.name}",
                    info={"bad-element": snode.name},
                )
            )
            continue
        op = _operation(child, inherited, f"{path}/{ESC_PREFIX}:{snode.name}", errors)
        if op is None:
            continue
        if snode.kind is NodeKind.LIST:
            _keys_first(child, snode)
            identity: tuple[object, ...] | None = _key_values(child, snode)
            if identity is None:
                missing = [k for k in snode.keys if child.find(f"{{{ESC_NS}}}{k}") is None]
                errors.append(
                    _err(
                        ErrorTag.MISSING_ELEMENT,
                        f'list entry "{snode.name}" lacks its key "{missing[0]}"',
                        f"{path}/{ESC_PREFIX}:{snode.name}",
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
    raw = element.get(OPERATION_ATTR)
    insert = element.get(INSERT_ATTR)
    if insert is not None and insert not in ("first", "last"):
        errors.append(
            _err(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                f'insert="{insert}" is not supported (only first and last)',
                path,
                info={"bad-attribute": "insert", "bad-element": etree.QName(element).localname},
            )
        )
        return None
    if raw is None:
        return inherited
    try:
        op = Operation(raw)
    except ValueError:
        errors.append(
            _err(
                ErrorTag.BAD_ATTRIBUTE,
                f'unknown operation "{raw}"',
                path,
                type=ErrorType.RPC,
                info={"bad-attribute": "operation", "bad-element": etree.QName(element).localname},
            )
        )
        return None
    if op is Operation.NONE:
        errors.append(
            _err(
                ErrorTag.BAD_ATTRIBUTE,
                'operation="none" is only a default-operation',
                path,
                info={"bad-attribute": "operation", "bad-element": etree.QName(element).localname},
            )
        )
        return None
    if inherited in _REMOVING and op is not inherited:
        errors.append(
            _err(
                ErrorTag.BAD_ATTRIBUTE,
                f'operation "{op}" inside a "{inherited}" makes no sense',
                path,
                info={"bad-attribute": "operation", "bad-element": etree.QName(element).localname},
            )
        )
        return None
    if inherited in _WRITING and op in _REMOVING:
        errors.append(
            _err(
                ErrorTag.BAD_ATTRIBUTE,
                f'operation "{op}" inside a "{inherited}" makes no sense',
                path,
                info={"bad-attribute": "operation", "bad-element": etree.QName(element).localname},
            )
        )
        return None
    return op


def _keys_first(entry: etree._Element, snode: SchemaNode) -> None:
    for position, key in enumerate(snode.keys):
        child = entry.find(f"{{{ESC_NS}}}{key}")
        if child is not None and entry.index(child) != position:
            entry.remove(child)
            entry.insert(position, child)


# --------------------------------------------------------------------------------------
# pass 3: application


@dataclass
class EditResult:
    """What applying an edit did; ``errors`` empty means it fully applied."""

    errors: list[RpcError] = field(default_factory=list)
    #: Paths (XPath-like, prefixed) of subtrees whose edit failed (continue-on-error).
    failed_paths: list[str] = field(default_factory=list)


class _Stop(Exception):
    pass


def apply_edit(
    data: etree._Element,
    config: etree._Element,
    *,
    default_operation: Operation,
    continue_on_error: bool = False,
) -> EditResult:
    """Apply the (checked) ``config`` to ``data`` in place."""
    result = EditResult()
    with contextlib.suppress(_Stop):
        _apply_children(
            data, config, data_roots(), default_operation, "", result, continue_on_error
        )
    _prune_empty(data)
    return result


def _fail(result: EditResult, error: RpcError, continue_on_error: bool) -> None:
    result.errors.append(error)
    result.failed_paths.append(error.path or "/")
    if not continue_on_error:
        raise _Stop


def _find_existing(
    target: etree._Element, edit_child: etree._Element, snode: SchemaNode
) -> etree._Element | None:
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


def _apply_children(  # noqa: PLR0917 (internal recursion)
    target: etree._Element,
    edit: etree._Element,
    schema_children: Mapping[tuple[str, str], SchemaNode],
    inherited: Operation,
    path: str,
    result: EditResult,
    continue_on_error: bool,
) -> None:
    for child in _children(edit):
        qname = etree.QName(child)
        snode = schema_children[(qname.namespace or "", qname.localname)]
        raw = child.get(OPERATION_ATTR)
        op = Operation(raw) if raw is not None else inherited
        here = f"{path}/{_step(child, snode)}"
        existing = _find_existing(target, child, snode)
        if snode.kind is NodeKind.LEAF and snode.name in _parent_keys(schema_children):
            continue  # list keys identify the entry; they are never edited on their own
        try:
            _apply_one(target, child, snode, op, existing, here, result, continue_on_error)
        except _Skip:
            continue


class _Skip(Exception):
    pass


def _parent_keys(schema_children: Mapping[tuple[str, str], SchemaNode]) -> tuple[str, ...]:
    # The key names of the list these children belong to are recorded on the key leaves'
    # siblings' parent; we find them through any child whose parent is a list.
    return _KEYS_BY_CHILDREN.get(id(schema_children), ())


_KEYS_BY_CHILDREN: dict[int, tuple[str, ...]] = {}


def _index_keys() -> None:
    for root in data_roots().values():
        for node in root.walk():
            if node.kind is NodeKind.LIST:
                _KEYS_BY_CHILDREN[id(node.children)] = node.keys


def _apply_one(  # noqa: PLR0917 (internal recursion)
    target: etree._Element,
    child: etree._Element,
    snode: SchemaNode,
    op: Operation,
    existing: etree._Element | None,
    here: str,
    result: EditResult,
    continue_on_error: bool,
) -> None:
    if op is Operation.CREATE and existing is not None:
        _fail(
            result,
            _err(ErrorTag.DATA_EXISTS, f'"{snode.name}" already exists', here),
            continue_on_error,
        )
        raise _Skip
    if op is Operation.DELETE and existing is None:
        _fail(
            result,
            _err(ErrorTag.DATA_MISSING, f'"{snode.name}" does not exist', here),
            continue_on_error,
        )
        raise _Skip
    if op in _REMOVING:
        if existing is not None:
            target.remove(existing)
        return
    if op is Operation.NONE:
        if existing is None:
            if snode.kind is NodeKind.LIST:
                _fail(
                    result,
                    _err(
                        ErrorTag.DATA_MISSING,
                        f'"{snode.name}" does not exist (default-operation none)',
                        here,
                    ),
                    continue_on_error,
                )
                raise _Skip
            if snode.kind is not NodeKind.CONTAINER:
                return
            existing = _insert(target, child.tag, snode)
        if snode.kind in (NodeKind.CONTAINER, NodeKind.LIST):
            _apply_children(existing, child, snode.children, op, here, result, continue_on_error)
        return
    # merge, replace, create
    if existing is None and snode.cases:
        _clear_other_cases(target, snode)
    if snode.kind is NodeKind.LEAF:
        value = child.text or ""
        if snode.secret and value == SECRET_MASK:
            if existing is None:
                _fail(
                    result,
                    _err(
                        ErrorTag.INVALID_VALUE,
                        "a secret cannot be set to the mask shown by get-config",
                        here,
                    ),
                    continue_on_error,
                )
                raise _Skip
            return
        if existing is None:
            existing = _insert(target, child.tag, snode)
        existing.text = child.text
        return
    if snode.kind is NodeKind.LEAF_LIST:
        if existing is None:
            new = _insert(target, child.tag, snode, first=child.get(INSERT_ATTR) == "first")
            new.text = child.text
        return
    if op is Operation.REPLACE or existing is None:
        if existing is not None:
            _restore_masked_secrets(child, existing, snode)
            fresh = etree.SubElement(target, child.tag)
            target.replace(existing, fresh)
        else:
            fresh = _insert(target, child.tag, snode, first=child.get(INSERT_ATTR) == "first")
        for key in snode.keys:
            key_leaf = child.find(f"{{{ESC_NS}}}{key}")
            if key_leaf is not None:
                etree.SubElement(fresh, key_leaf.tag).text = key_leaf.text
        existing = fresh
        # Build the new content through merge, so nested lists and leaf-lists are ordered
        # and secrets handled exactly as for a merge.
        op = Operation.MERGE
    _apply_children(existing, child, snode.children, op, here, result, continue_on_error)


def _clear_other_cases(target: etree._Element, snode: SchemaNode) -> None:
    """Creating a node of one case deletes the nodes of the choice's other cases (RFC 7950 7.9)."""
    mine = dict(snode.cases)
    for sibling in list(_children(target)):
        qname = etree.QName(sibling)
        other = _parent_children(snode).get((qname.namespace or "", qname.localname))
        if other is None or other is snode:
            continue
        if any(mine.get(choice) not in (None, case) for choice, case in other.cases):
            target.remove(sibling)


def _restore_masked_secrets(
    edit: etree._Element, existing: etree._Element, snode: SchemaNode
) -> None:
    """A replace that sends back the mask for a secret keeps the stored secret."""
    for secret_path in _secret_paths(snode):
        for leaf in edit.iterfind(secret_path, namespaces={ESC_PREFIX: ESC_NS}):
            if leaf.text != SECRET_MASK:
                continue
            relative = _relative_xpath(edit, leaf)
            found = existing.xpath(relative, namespaces={ESC_PREFIX: ESC_NS})
            if isinstance(found, list) and found and isinstance(found[0], etree._Element):
                leaf.text = found[0].text


def _secret_paths(snode: SchemaNode) -> list[str]:
    paths: list[str] = []

    def walk(node: SchemaNode, prefix: str) -> None:
        for child in node.children.values():
            step = f"{prefix}/{ESC_PREFIX}:{child.name}" if prefix else f"{ESC_PREFIX}:{child.name}"
            if child.secret:
                paths.append(".//" + f"{ESC_PREFIX}:{child.name}")
            walk(child, step)

    walk(snode, "")
    return sorted(set(paths))


def _relative_xpath(root: etree._Element, node: etree._Element) -> str:
    steps: list[str] = []
    current: etree._Element | None = node
    while current is not None and current is not root:
        parent = current.getparent()
        local = etree.QName(current).localname
        step = f"{ESC_PREFIX}:{local}"
        if parent is not None:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == current.tag]
            if len(same) > 1:
                name = current.find(f"{{{ESC_NS}}}name")
                ident = current.find(f"{{{ESC_NS}}}id")
                key = name if name is not None else ident
                if key is not None:
                    step += f"[{ESC_PREFIX}:{etree.QName(key).localname}='{key.text}']"
        steps.append(step)
        current = parent
    return "./" + "/".join(reversed(steps))


def _insert(
    target: etree._Element, tag: str, snode: SchemaNode, *, first: bool = False
) -> etree._Element:
    """Create a ``tag`` child of ``target`` in schema order (keys first), in target's nsmap."""
    order = _ORDER.get(id(_parent_children(snode)), {})
    rank = order.get(snode.name, len(order))
    same = [c for c in _children(target) if c.tag == tag]
    if same:
        anchor = same[0] if first else same[-1]
        index = target.index(anchor) + (0 if first else 1)
    else:
        index = 0
        for position, existing in enumerate(target):
            if not isinstance(existing.tag, str):
                continue
            if order.get(etree.QName(existing).localname, len(order)) <= rank:
                index = position + 1
    new = etree.SubElement(target, tag)  # created in place: inherits target's namespace map
    if index < len(target) - 1:
        target.insert(index, new)
    return new


_ORDER: dict[int, dict[str, int]] = {}
_PARENT_CHILDREN: dict[int, Mapping[tuple[str, str], SchemaNode]] = {}


def _parent_children(snode: SchemaNode) -> Mapping[tuple[str, str], SchemaNode]:
    return _PARENT_CHILDREN.get(id(snode), {})


def _index_order() -> None:
    def visit(children: Mapping[tuple[str, str], SchemaNode], keys: tuple[str, ...]) -> None:
        names = list(keys) + [n.name for n in children.values() if n.name not in keys]
        _ORDER[id(children)] = {name: i for i, name in enumerate(names)}
        for node in children.values():
            _PARENT_CHILDREN[id(node)] = children
            visit(node.children, node.keys)

    visit(data_roots(), ())


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


_index_keys()
_index_order()
