"""The YANG schema of esc-orch, loaded once from ``yang/`` and exposed as a plain Python tree.

libyang (C, through CFFI) owns parsing and validation; the edit engine and the datastore need
only a few facts per node (kind, keys, ordering, choice membership, secrecy), which are copied
here into frozen dataclasses so that walking the tree costs no FFI calls and no libyang object
lifetimes leak into the rest of the program.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path

import libyang
from _libyang import ffi, lib
from lxml import etree

ESC_NS = "http://www.cisco.com/esc/esc"
ESC_MODULE = "esc"
ESC_PREFIX = "esc"
ESC_REVISION = "2026-11-27"
#: Our own module (yang/esc-orch.yang): what we show that ESC's model lacks, augmenting it.
EO_NS = "urn:esc-orch:yang:esc-orch"
EO_MODULE = "esc-orch"
EO_PREFIX = "eo"
EO_REVISION = "2026-12-03"
EO_CAPABILITY = f"{EO_NS}?module={EO_MODULE}&revision={EO_REVISION}"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"

#: The prefix our error-paths and our own XML give each namespace of the configuration.
PREFIXES: Mapping[str, str] = {ESC_NS: ESC_PREFIX, EO_NS: EO_PREFIX}
#: The namespace of each module, by the module name libyang writes in data paths.
MODULE_NAMESPACES: Mapping[str, str] = {ESC_MODULE: ESC_NS, EO_MODULE: EO_NS}

#: Module capability announced in the NETCONF hello.
ESC_CAPABILITY = f"{ESC_NS}?module={ESC_MODULE}&revision={ESC_REVISION}"


class NodeKind(StrEnum):
    CONTAINER = "container"
    LIST = "list"
    LEAF = "leaf"
    LEAF_LIST = "leaf-list"


@dataclass(frozen=True, slots=True)
class SchemaNode:
    """One data node of the schema (choices and cases are folded into ``cases``)."""

    name: str
    namespace: str
    kind: NodeKind
    config: bool
    path: str
    keys: tuple[str, ...] = ()
    ordered_by_user: bool = False
    presence: bool = False
    secret: bool = False
    mandatory: bool = False
    is_key: bool = False
    #: True when a secret leaf sits somewhere below (masking walks only these subtrees).
    holds_secret: bool = False
    #: Rank among its siblings in schema order, list keys first (data is written in this order).
    position: int = 0
    #: (choice, case) pairs from the nearest data parent down to this node.
    cases: tuple[tuple[str, str], ...] = ()
    #: For leafrefs: the target path with prefixes, as written in the module.
    leafref: str | None = None
    base_type: str | None = None
    #: For leaves: the YANG default as libyang types it (int, bool or str), else None.
    default: object = None
    children: Mapping[tuple[str, str], SchemaNode] = field(default_factory=dict)

    def child(self, namespace: str, name: str) -> SchemaNode | None:
        return self.children.get((namespace, name))

    def walk(self) -> Iterator[SchemaNode]:
        yield self
        for node in self.children.values():
            yield from node.walk()


def yang_dir() -> Path:
    """The directory holding ``esc.yang`` (inside the package, or the repository's ``yang/``)."""
    packaged = Path(str(resources.files("esc_orch") / "yang"))
    if (packaged / "esc.yang").is_file():
        return packaged
    repo = Path(__file__).resolve().parents[3] / "yang"
    return repo


@cache
def context() -> libyang.Context:
    """The process-wide libyang context with the esc and esc-orch modules implemented."""
    # Store errors in the context *with* their data location (validate.py reads them).
    libyang.configure_logging(True, logging.CRITICAL)
    ctx = libyang.Context(str(yang_dir()))
    ctx.load_module(ESC_MODULE)
    ctx.load_module(EO_MODULE)
    return ctx


def _case_chain(cdata: object) -> tuple[tuple[str, str], ...]:
    chain: list[tuple[str, str]] = []
    parent = cdata.parent  # type: ignore[attr-defined]
    while parent != ffi.NULL and parent.nodetype in (lib.LYS_CASE, lib.LYS_CHOICE):
        if parent.nodetype == lib.LYS_CASE:
            choice = parent.parent
            chain.append((ffi.string(choice.name).decode(), ffi.string(parent.name).decode()))
        parent = parent.parent
    return tuple(reversed(chain))


_KINDS = {
    "container": NodeKind.CONTAINER,
    "list": NodeKind.LIST,
    "leaf": NodeKind.LEAF,
    "leaf-list": NodeKind.LEAF_LIST,
}


def prefix_of(namespace: str) -> str:
    """The prefix of ``namespace`` in error-paths (``esc`` for ESC's, ``eo`` for ours)."""
    return PREFIXES.get(namespace, ESC_PREFIX)


def _namespace(snode: libyang.SNode) -> str:
    """The namespace of the module that defines ``snode`` (an augment's: its own module's)."""
    return str(ffi.string(snode.cdata.module.ns).decode())


def _convert(snode: libyang.SNode, position: int = 0) -> SchemaNode:
    kind = _KINDS[snode.keyword()]
    children: dict[tuple[str, str], SchemaNode] = {}
    keys: tuple[str, ...] = ()
    ordered = False
    presence = False
    leafref: str | None = None
    base_type: str | None = None
    default: object = None
    if kind in (NodeKind.CONTAINER, NodeKind.LIST):
        kids = [c for c in snode.children() if c.keyword() in _KINDS]  # type: ignore[attr-defined]
        kids.sort(key=lambda c: not (isinstance(c, libyang.SLeaf) and c.is_key()))  # keys first
        for rank, child in enumerate(kids):
            converted = _convert(child, rank)
            children[(converted.namespace, converted.name)] = converted
    if isinstance(snode, libyang.SList):
        keys = tuple(k.name() for k in snode.keys())  # noqa: SIM118 (not a dict)
        ordered = snode.ordered()
    if isinstance(snode, libyang.SLeafList):
        ordered = snode.ordered()
    if isinstance(snode, libyang.SContainer):
        presence = snode.presence() is not None
    if isinstance(snode, (libyang.SLeaf, libyang.SLeafList)):
        ytype = snode.type()
        base_type = ytype.basename()
        if base_type == "leafref":
            leafref = ytype.leafref_path()
    if isinstance(snode, libyang.SLeaf):
        default = snode.default()
    secret = any(ext.name() == "secret" for ext in snode.extensions())
    return SchemaNode(
        name=snode.name(),
        namespace=_namespace(snode),
        kind=kind,
        config=not snode.config_false(),
        path=snode.schema_path(),
        keys=keys,
        ordered_by_user=ordered,
        presence=presence,
        secret=secret,
        mandatory=snode.mandatory(),
        is_key=isinstance(snode, libyang.SLeaf) and snode.is_key(),
        holds_secret=any(c.secret or c.holds_secret for c in children.values()),
        position=position,
        cases=_case_chain(snode.cdata),
        leafref=leafref,
        base_type=base_type,
        default=default,
        children=children,
    )


@cache
def data_roots() -> Mapping[tuple[str, str], SchemaNode]:
    """Top-level data nodes of the module (``esc_datamodel``, ``esc_system_config``)."""
    module = context().get_module(ESC_MODULE)
    roots: dict[tuple[str, str], SchemaNode] = {}
    for rank, snode in enumerate(module.children()):
        if snode.keyword() in _KINDS:
            node = _convert(snode, rank)
            roots[(node.namespace, node.name)] = node
    return roots


def find(path: str) -> SchemaNode:
    """The node at a schema path written ``/esc_datamodel/tenants/tenant`` (no prefixes)."""
    steps = [s for s in path.split("/") if s]
    node = data_roots()[(ESC_NS, steps[0])]
    for step in steps[1:]:
        nxt = node.child(ESC_NS, step)
        if nxt is None:
            raise KeyError(path)
        node = nxt
    return node


def list_keys(element: etree._Element) -> tuple[str, ...]:
    """The key leaf names of the list a data element is an entry of (``()`` if not a list).

    Used by the NETCONF filters to keep keys in selected output; the element may sit in any
    wrapper (``<data>``, ``<rpc-reply>``): the path is read from its top-level data ancestor.
    """
    steps: list[tuple[str, str]] = []
    current: etree._Element | None = element
    while current is not None:
        qname = etree.QName(current)
        steps.append((qname.namespace or "", qname.localname))
        if steps[-1] in data_roots():
            break
        current = current.getparent()
    else:
        return ()
    node = data_roots()[steps.pop()]
    for step in reversed(steps):
        child = node.child(*step)
        if child is None:
            return ()
        node = child
    return node.keys
