"""Validation of configuration, RPC input and notifications with libyang; errors become data.

libyang is called through its C API (via the CFFI module of the ``libyang`` bindings) so that
every error item keeps its validation code, data path and app-tag; the high-level bindings
flatten them into one string. :func:`to_rpc_error` is the one place where a libyang error
becomes an RFC 6241 ``rpc-error`` (tag per RFC 7950 §8.3 and §15), with an ``error-path``
whose every step carries the ``esc:`` prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from _libyang import ffi, lib
from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError, RpcErrors
from esc_orch.model.schema import (
    ESC_MODULE,
    MODULE_NAMESPACES,
    PREFIXES,
    context,
    data_roots,
    prefix_of,
)

#: Prefix map for error paths rendered by the NETCONF layer (``esc:``, and ``eo:`` for ours).
ERROR_PATH_NSMAP = {prefix: namespace for namespace, prefix in PREFIXES.items()}


@dataclass(frozen=True, slots=True)
class LyError:
    """One libyang error item, as libyang reported it."""

    code: int
    vecode: int
    message: str
    path: str | None
    app_tag: str | None


_LOCATION = re.compile(
    r'^(?:Schema location "(?P<schema>[^"]*)",\s*)?(?:data location "(?P<path>[^"]*)"'
    r'(?:,\s*line number \d+)?\.\s*|line number \d+\.\s*|schema location "(?P<only>[^"]*)"\.\s*)',
    re.IGNORECASE,
)


def _split_location(message: str) -> tuple[str, str | None]:
    """libyang prefixes messages with 'Data location "/p", line number N.': split it off."""
    match = _LOCATION.match(message)
    if not match:
        return message, None
    if match["path"]:
        return message[match.end() :], match["path"]
    schema = match["schema"] or match["only"]
    return message[match.end() :], f"schema:{schema}" if schema else None


def _drain_errors() -> list[LyError]:
    ctx = context()
    errors: list[LyError] = []
    item = lib.ly_err_first(ctx.cdata)
    while item != ffi.NULL:
        message, location = _split_location(ffi.string(item.msg).decode() if item.msg else "")
        raw_path = ffi.string(item.path).decode() if item.path else None
        if raw_path and not raw_path.startswith("/"):
            # libyang 2.1 stores the location sentence, not a bare path, in ``path``.
            location = _split_location(raw_path.rstrip() + " ")[1]
            raw_path = None
        errors.append(
            LyError(
                code=int(item.no),
                vecode=int(item.vecode),
                message=message,
                path=raw_path or location,
                app_tag=ffi.string(item.apptag).decode() if item.apptag else None,
            )
        )
        item = item.next
    lib.ly_err_clean(ctx.cdata, ffi.NULL)
    return errors


_STEP = re.compile(r"(?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)(?P<preds>(\[[^\]]*\])*)")
_PRED_KEY = re.compile(r"\[(?P<key>[A-Za-z_][\w.\-]*)=")


def _split_path(path: str) -> list[str]:
    """Split an XPath on '/' outside predicates and quotes."""
    steps: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in path:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "/" and depth == 0:
            steps.append("".join(current))
            current = []
            continue
        current.append(char)
    steps.append("".join(current))
    return [s for s in steps if s]


def _module_steps(path: str) -> Iterator[tuple[str, str, str]]:
    """(namespace, name, rest) per step of a libyang path: a step without a module name
    is in its parent's module (``/esc:a/b/esc-orch:c/d``: d is esc-orch's)."""
    module = ESC_MODULE
    for step in _split_path(path):
        match = _STEP.match(step)
        if not match:
            yield MODULE_NAMESPACES[module], step, ""
            continue
        qualified = match["name"]
        if ":" in qualified:
            named, _, qualified = qualified.partition(":")
            module = named if named in MODULE_NAMESPACES else module
        yield MODULE_NAMESPACES[module], qualified, step[len(match["name"]) :]


def prefixed_path(path: str | None) -> str | None:
    """Turn libyang's JSON-style data path into an XML XPath with a prefix on every step:
    ``esc:`` for ESC's nodes, ``eo:`` for ours (an augment of ESC's tree)."""
    if not path:
        return None
    out: list[str] = []
    for namespace, name, rest in _module_steps(path):
        prefix = prefix_of(namespace)
        preds = _PRED_KEY.sub(rf"[{prefix}:\g<key>=", rest)
        out.append(f"{prefix}:{name}{preds}")
    return "/" + "/".join(out)


def to_rpc_error(err: LyError) -> RpcError:
    """Map one libyang error to an ``rpc-error`` (RFC 7950 §8.3.1, §15)."""
    msg = err.message
    path = prefixed_path(err.path)
    tag = ErrorTag.INVALID_VALUE
    app_tag = err.app_tag
    info: dict[str, str] = {}
    if app_tag in ("instance-required", "missing-choice"):
        tag = ErrorTag.DATA_MISSING
    elif app_tag in ("too-few-elements", "too-many-elements", "data-not-unique", "must-violation"):
        tag = ErrorTag.OPERATION_FAILED
    elif msg.startswith("Mandatory choice"):
        tag, app_tag = ErrorTag.DATA_MISSING, "missing-choice"
    elif msg.startswith("Mandatory node"):
        tag = ErrorTag.DATA_MISSING
    elif "missing its key" in msg:
        tag = ErrorTag.MISSING_ELEMENT
    elif msg.startswith("Duplicate instance"):
        tag = ErrorTag.BAD_ELEMENT
    elif msg.startswith("Too few"):
        tag, app_tag = ErrorTag.OPERATION_FAILED, "too-few-elements"
    elif msg.startswith("Too many"):
        tag, app_tag = ErrorTag.OPERATION_FAILED, "too-many-elements"
    elif msg.startswith("No module with namespace"):
        tag = ErrorTag.UNKNOWN_NAMESPACE
    elif "not found as a child" in msg or "not found in" in msg:
        tag = ErrorTag.UNKNOWN_ELEMENT
    elif msg.startswith("Data for both cases"):
        tag = ErrorTag.BAD_ELEMENT
    elif err.vecode == lib.LYVE_SYNTAX_XML:
        tag = ErrorTag.MALFORMED_MESSAGE
    if path and tag in (ErrorTag.BAD_ELEMENT, ErrorTag.UNKNOWN_ELEMENT, ErrorTag.MISSING_ELEMENT):
        info["bad-element"] = path.rsplit("/", 1)[-1].split("[", 1)[0].split(":", 1)[-1]
    return RpcError(
        tag=tag,
        type=ErrorType.APPLICATION,
        message=msg,
        path=path,
        app_tag=app_tag,
        info=info,
    )


@contextmanager
def _parsed(
    xml: bytes, *, parse_flags: int, validate_flags: int, dtype: int | None = None
) -> Iterator[tuple[object, list[LyError]]]:
    """Parse ``xml`` with libyang; yield (tree or NULL, errors); free the tree afterwards."""
    ctx = context()
    lib.ly_err_clean(ctx.cdata, ffi.NULL)
    data_in = ffi.new("struct ly_in **")
    buf = ffi.new("char[]", xml)
    if lib.ly_in_new_memory(buf, data_in) != lib.LY_SUCCESS:
        raise MemoryError("libyang could not open the input")
    tree = ffi.new("struct lyd_node **", ffi.NULL)
    try:
        if dtype is None:
            ret = lib.lyd_parse_data(
                ctx.cdata, ffi.NULL, data_in[0], lib.LYD_XML, parse_flags, validate_flags, tree
            )
        else:
            op = ffi.new("struct lyd_node **", ffi.NULL)
            ret = lib.lyd_parse_op(ctx.cdata, ffi.NULL, data_in[0], lib.LYD_XML, dtype, tree, op)
            if ret == lib.LY_SUCCESS:
                # parsing an operation checks types only; mandatory nodes need validation
                kind = lib.LYD_TYPE_NOTIF_YANG if dtype == lib.LYD_TYPE_NOTIF_NETCONF else dtype
                ret = lib.lyd_validate_op(op[0], ffi.NULL, kind, ffi.NULL)
        errors = _drain_errors() if ret != lib.LY_SUCCESS else []
        if ret != lib.LY_SUCCESS and not errors:
            errors = [LyError(int(ret), 0, "libyang refused the data", None, None)]
        yield tree[0], errors
    finally:
        lib.ly_in_free(data_in[0], 0)
        if tree[0] != ffi.NULL:
            lib.lyd_free_all(tree[0])


def _serialise(root: etree._Element | bytes) -> bytes:
    return root if isinstance(root, bytes) else etree.tostring(root)


def check_types(data: etree._Element | bytes) -> list[RpcError]:
    """Parse without validating references or mandatory nodes: types, ranges, unknown nodes.

    ``data`` is one top-level data node (or a ``<config>``/``<data>`` wrapper of several).
    """
    xml = _wrap(data)
    flags = lib.LYD_PARSE_ONLY | lib.LYD_PARSE_STRICT | lib.LYD_PARSE_NO_STATE
    with _parsed(xml, parse_flags=flags, validate_flags=0) as (_tree, errors):
        return [to_rpc_error(e) for e in errors]


def validate_config(data: etree._Element | bytes) -> list[RpcError]:
    """Fully validate configuration data: types, mandatory nodes, leafrefs, must, keys."""
    xml = _wrap(data)
    flags = lib.LYD_PARSE_STRICT | lib.LYD_PARSE_NO_STATE
    with _parsed(xml, parse_flags=flags, validate_flags=lib.LYD_VALIDATE_NO_STATE) as (
        _tree,
        errors,
    ):
        located = [_locate(e, data) for e in errors]
        return [to_rpc_error(e) for e in located]


def _locate(err: LyError, data: etree._Element | bytes) -> LyError:
    """libyang names only the schema node of a missing mandatory node: find the instance."""
    if not err.path or not err.path.startswith("schema:"):
        return err
    # (namespace, name, the step as libyang writes it: module-qualified where it changes)
    steps: list[tuple[str, str, str]] = []
    module = ""
    for namespace, name, _rest in _module_steps(err.path[len("schema:") :]):
        named = next(m for m, ns in MODULE_NAMESPACES.items() if ns == namespace)
        steps.append((namespace, name, name if named == module else f"{named}:{name}"))
        module = named
    root = etree.fromstring(data) if isinstance(data, bytes) else data
    first_ns, first, first_step = steps[0]
    tops = [root] if etree.QName(root).localname == first else list(root)
    for top in tops:
        if etree.QName(top).localname != first:
            continue
        node = data_roots()[(first_ns, first)]
        level: list[tuple[etree._Element, str]] = [(top, f"/{first_step}")]
        for namespace, step, written in steps[1:-1]:
            if (namespace, step) not in node.children:
                continue  # a choice or case name: not a data node
            node = node.children[(namespace, step)]
            nxt = []
            for element, path in level:
                for child in element.iterchildren(f"{{{namespace}}}{step}"):
                    preds = "".join(
                        f"[{k}='{child.findtext(f'{{{namespace}}}{k}')}']" for k in node.keys
                    )
                    nxt.append((child, f"{path}/{written}{preds}"))
            level = nxt
        last_ns, last, last_step = steps[-1]
        for element, path in level:
            if element.find(f"{{{last_ns}}}{last}") is None:
                return LyError(
                    err.code, err.vecode, err.message, f"{path}/{last_step}", err.app_tag
                )
    whole = "/" + "/".join(written for _ns, _name, written in steps)
    return LyError(err.code, err.vecode, err.message, whole, err.app_tag)


def _wrap(data: etree._Element | bytes) -> bytes:
    """libyang parses sibling top-level nodes only inside one document: strip NETCONF wrappers."""
    if isinstance(data, bytes):
        return data
    if etree.QName(data).localname in ("config", "data") and etree.QName(data).namespace in (
        "urn:ietf:params:xml:ns:netconf:base:1.0",
        None,
    ):
        return b"".join(etree.tostring(child) for child in data)
    return etree.tostring(data)


def validate_rpc_input(rpc: etree._Element) -> list[RpcError]:
    """Validate the operation element of an ESC RPC (e.g. ``<vmAction>``) against the module."""
    with _parsed(_serialise(rpc), parse_flags=0, validate_flags=0, dtype=lib.LYD_TYPE_RPC_YANG) as (
        _tree,
        errors,
    ):
        return [_rpc_error(e) for e in errors]


def require_valid_rpc(rpc: etree._Element) -> None:
    """:func:`validate_rpc_input`, raising the errors (the NETCONF RPC validator hook)."""
    errors = validate_rpc_input(rpc)
    if errors:
        raise RpcErrors(errors)


def validate_notification(notification: etree._Element) -> list[RpcError]:
    """Validate a full ``<notification>`` envelope (eventTime + escEvent) against the module."""
    with _parsed(
        _serialise(notification),
        parse_flags=0,
        validate_flags=0,
        dtype=lib.LYD_TYPE_NOTIF_NETCONF,
    ) as (_tree, errors):
        return [to_rpc_error(e) for e in errors]


def _rpc_error(err: LyError) -> RpcError:
    base = to_rpc_error(err)
    if base.tag == ErrorTag.DATA_MISSING and err.message.startswith("Mandatory node"):
        return RpcError(
            tag=ErrorTag.MISSING_ELEMENT,
            type=ErrorType.PROTOCOL,
            message=base.message,
            path=base.path,
            info={"bad-element": (base.path or "").rsplit(":", 1)[-1]},
        )
    return RpcError(
        tag=base.tag,
        type=ErrorType.PROTOCOL,
        message=base.message,
        path=base.path,
        app_tag=base.app_tag,
        info=base.info,
    )
