"""Schema discovery: ietf-netconf-monitoring (RFC 6022) and the YANG library (RFC 8525).

Clients such as yangcli fetch the schemas a server announces instead of shipping them: they
read ``netconf-state/schemas`` (or the YANG library) and call ``get-schema``. This module
serves that: the module texts (esc and its submodule as written, the IETF modules libyang
implements as libyang prints them), ``netconf-state`` (capabilities, datastores, schemas,
sessions with their counters, server statistics) and ``yang-library`` / ``modules-state``.
It is protocol logic only: the texts are gathered once by :func:`schema_catalog`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import libyang
from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError
from esc_orch.model.schema import ESC_MODULE, ESC_NS, ESC_REVISION, context, yang_dir
from esc_orch.northbound.backend import Datastore
from esc_orch.northbound.rpc import RpcContext
from esc_orch.northbound.session import ElementsReply, Reply, module_capability

if TYPE_CHECKING:
    from esc_orch.northbound.core import NetconfCore

NCM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
NCM_MODULE = "ietf-netconf-monitoring"
NCM_REVISION = "2010-10-04"
YANGLIB_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
YANGLIB_REVISION = "2019-01-04"
DS_NS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
NC_DATA_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """One module or submodule the server can hand out with ``get-schema``."""

    identifier: str
    version: str
    namespace: str
    text: str
    #: Implemented (its data is served) or only imported for its types.
    implemented: bool = True
    #: For a submodule: the module that includes it.
    belongs_to: str | None = None


def _ietf_module_file(name: str) -> Path | None:
    """An IETF module's text as installed with pyang (a dependency), if present."""
    for base in (Path(sys.prefix), Path("/usr")):
        path = base / "share" / "yang" / "modules" / "ietf" / f"{name}.yang"
        if path.is_file():
            return path
    return None


def _revision(module: libyang.Module) -> str:
    revisions = [r.date() for r in module.revisions()]
    return revisions[0] if revisions else ""


@cache
def schema_catalog() -> tuple[Schema, ...]:
    """Every schema this server announces, with its text."""
    ctx = context()
    schemas = [
        Schema(
            identifier=ESC_MODULE,
            version=ESC_REVISION,
            namespace=ESC_NS,
            text=(yang_dir() / f"{ESC_MODULE}.yang").read_text(encoding="utf-8"),
        ),
        Schema(
            identifier="esc-types",
            version=ESC_REVISION,
            namespace=ESC_NS,
            text=(yang_dir() / "esc-types.yang").read_text(encoding="utf-8"),
            belongs_to=ESC_MODULE,
        ),
    ]
    for name in ("ietf-inet-types", "ietf-yang-types", "ietf-yang-library", "ietf-datastores"):
        module = ctx.get_module(name)
        schemas.append(
            Schema(
                identifier=name,
                version=_revision(module),
                namespace=libyang.util.c2str(module.cdata.ns),
                text=str(module.print_mem("yang")),
                implemented=name in ("ietf-yang-library",),
            )
        )
    ncm = _ietf_module_file(NCM_MODULE)
    if ncm is not None:
        text = ncm.read_text(encoding="utf-8")
        if f"revision {NCM_REVISION}" in text:
            schemas.append(
                Schema(identifier=NCM_MODULE, version=NCM_REVISION, namespace=NCM_NS, text=text)
            )
    return tuple(schemas)


def content_id(schemas: Iterable[Schema]) -> str:
    """A digest of the module set: it changes exactly when a served schema does."""
    digest = hashlib.sha256()
    for schema in sorted(schemas, key=lambda s: (s.identifier, s.version)):
        digest.update(f"{schema.identifier}@{schema.version}\n".encode())
        digest.update(schema.text.encode())
    return digest.hexdigest()[:16]


def _sub(parent: etree._Element, ns: str, name: str, text: object | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        child.text = str(text)
    return child


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _host(peer: str) -> str | None:
    """The address of ``host:port`` / ``[v6]:port`` / ``v6`` peers (inet:host)."""
    if not peer or peer in ("-", "in-process"):
        return None
    if peer.startswith("["):
        return peer[1 : peer.index("]")]
    if peer.count(":") == 1:
        return peer.split(":", 1)[0]
    return peer


class NetconfMonitoring:
    """get-schema, ``netconf-state`` and the YANG library for one server."""

    def __init__(self, *, schemas: Iterable[Schema]) -> None:
        self.schemas = tuple(schemas)
        self.content_id = content_id(self.schemas)
        self._core: NetconfCore | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Announced in the hello: the monitoring module and the YANG library."""
        caps = [
            "urn:ietf:params:netconf:capability:yang-library:1.0"
            f"?revision={YANGLIB_REVISION}&module-set-id={self.content_id}",
        ]
        if any(s.identifier == NCM_MODULE for s in self.schemas):
            caps.append(
                module_capability(namespace=NCM_NS, module=NCM_MODULE, revision=NCM_REVISION)
            )
        return tuple(caps)

    def install(self, core: NetconfCore) -> None:
        """Register get-schema and add ``netconf-state`` and the YANG library to ``get``."""
        self._core = core
        core.registry.register(namespace=NCM_NS, name="get-schema", handler=self.get_schema)
        core.state_providers.append(self.state)

    # -------------------------------------------------------------- get-schema

    def find(self, identifier: str, version: str | None, fmt: str | None) -> Schema:
        if fmt not in (None, "", "yang") and fmt.split(":")[-1] != "yang":
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"schema format {fmt!r} is not available (only yang)",
                info={"bad-element": "format"},
            )
        found = [s for s in self.schemas if s.identifier == identifier]
        if version:
            found = [s for s in found if s.version == version]
        if not found:
            wanted = f"{identifier}@{version}" if version else identifier
            raise RpcError(
                tag=ErrorTag.INVALID_VALUE,
                message=f"no schema {wanted!r} on this server (see netconf-state/schemas)",
                info={"bad-element": "identifier"},
            )
        return found[0]

    async def get_schema(self, ctx: RpcContext, op: etree._Element) -> Reply:
        values: dict[str, str] = {}
        for child in op:
            if not isinstance(child.tag, str):
                continue
            qname = etree.QName(child)
            if qname.namespace != NCM_NS or qname.localname not in (
                "identifier",
                "version",
                "format",
            ):
                raise RpcError(
                    tag=ErrorTag.UNKNOWN_ELEMENT,
                    type=ErrorType.PROTOCOL,
                    message=f"unexpected parameter {qname.localname!r} in get-schema",
                    info={"bad-element": qname.localname},
                )
            values[qname.localname] = (child.text or "").strip()
        if not values.get("identifier"):
            raise RpcError(
                tag=ErrorTag.MISSING_ELEMENT,
                type=ErrorType.PROTOCOL,
                message="get-schema needs an identifier",
                info={"bad-element": "identifier"},
            )
        schema = self.find(values["identifier"], values.get("version"), values.get("format"))
        data = etree.Element(f"{{{NCM_NS}}}data", nsmap={None: NCM_NS})  # type: ignore[dict-item]
        data.text = schema.text
        return ElementsReply((data,))

    # -------------------------------------------------------------- state

    def state(self) -> etree._Element:
        """``netconf-state``, ``yang-library`` and ``modules-state`` in a ``<data>`` element."""
        data = etree.Element(f"{{{NC_DATA_NS}}}data")
        data.append(self._netconf_state())
        data.append(self._yang_library())
        data.append(self._modules_state())
        return data

    def _netconf_state(self) -> etree._Element:
        core = self._core
        root = etree.Element(f"{{{NCM_NS}}}netconf-state", nsmap={None: NCM_NS})  # type: ignore[dict-item]
        caps = _sub(root, NCM_NS, "capabilities")
        for uri in core.capabilities if core else ():
            _sub(caps, NCM_NS, "capability", uri)
        stores = _sub(root, NCM_NS, "datastores")
        for store in (Datastore.RUNNING, Datastore.CANDIDATE):
            entry = _sub(stores, NCM_NS, "datastore")
            _sub(entry, NCM_NS, "name", store.value)
            holder = core.locks.holder(store) if core else None
            since = core.locks.since(store) if core else None
            if holder is not None and since is not None:
                lock = _sub(_sub(entry, NCM_NS, "locks"), NCM_NS, "global-lock")
                _sub(lock, NCM_NS, "locked-by-session", holder)
                _sub(lock, NCM_NS, "locked-time", _time(since))
        schemas = _sub(root, NCM_NS, "schemas")
        for schema in self.schemas:
            entry = _sub(schemas, NCM_NS, "schema")
            _sub(entry, NCM_NS, "identifier", schema.identifier)
            _sub(entry, NCM_NS, "version", schema.version)
            _sub(entry, NCM_NS, "format", "yang")
            _sub(entry, NCM_NS, "namespace", schema.namespace)
            _sub(entry, NCM_NS, "location", "NETCONF")
        if core is None:
            return root
        sessions = _sub(root, NCM_NS, "sessions")
        for info in sorted(core.sessions.values(), key=lambda s: s.session_id):
            entry = _sub(sessions, NCM_NS, "session")
            _sub(entry, NCM_NS, "session-id", info.session_id)
            _sub(entry, NCM_NS, "transport", "netconf-ssh")
            _sub(entry, NCM_NS, "username", info.username)
            host = _host(info.peer)
            if host:
                _sub(entry, NCM_NS, "source-host", host)
            _sub(entry, NCM_NS, "login-time", _time(info.login_time))
            _sub(entry, NCM_NS, "in-rpcs", info.in_rpcs)
            _sub(entry, NCM_NS, "in-bad-rpcs", info.in_bad_rpcs)
            _sub(entry, NCM_NS, "out-rpc-errors", info.out_rpc_errors)
        stats = core.statistics
        statistics = _sub(root, NCM_NS, "statistics")
        _sub(statistics, NCM_NS, "netconf-start-time", _time(stats.start_time))
        _sub(statistics, NCM_NS, "in-sessions", stats.in_sessions)
        _sub(statistics, NCM_NS, "dropped-sessions", stats.dropped_sessions)
        _sub(statistics, NCM_NS, "in-rpcs", stats.in_rpcs)
        _sub(statistics, NCM_NS, "in-bad-rpcs", stats.in_bad_rpcs)
        _sub(statistics, NCM_NS, "out-rpc-errors", stats.out_rpc_errors)
        return root

    def _modules(self) -> tuple[list[Schema], list[Schema], dict[str, list[Schema]]]:
        modules = [s for s in self.schemas if s.belongs_to is None and s.implemented]
        imports = [s for s in self.schemas if s.belongs_to is None and not s.implemented]
        subs: dict[str, list[Schema]] = {}
        for schema in self.schemas:
            if schema.belongs_to:
                subs.setdefault(schema.belongs_to, []).append(schema)
        return modules, imports, subs

    def _yang_library(self) -> etree._Element:
        root = etree.Element(
            f"{{{YANGLIB_NS}}}yang-library",
            nsmap={None: YANGLIB_NS, "ds": DS_NS},  # type: ignore[dict-item]
        )
        modules, imports, subs = self._modules()
        module_set = _sub(root, YANGLIB_NS, "module-set")
        _sub(module_set, YANGLIB_NS, "name", "complete")
        for schema in modules:
            entry = _sub(module_set, YANGLIB_NS, "module")
            _sub(entry, YANGLIB_NS, "name", schema.identifier)
            _sub(entry, YANGLIB_NS, "revision", schema.version)
            _sub(entry, YANGLIB_NS, "namespace", schema.namespace)
            for sub in subs.get(schema.identifier, []):
                sub_entry = _sub(entry, YANGLIB_NS, "submodule")
                _sub(sub_entry, YANGLIB_NS, "name", sub.identifier)
                _sub(sub_entry, YANGLIB_NS, "revision", sub.version)
        for schema in imports:
            entry = _sub(module_set, YANGLIB_NS, "import-only-module")
            _sub(entry, YANGLIB_NS, "name", schema.identifier)
            _sub(entry, YANGLIB_NS, "revision", schema.version)
            _sub(entry, YANGLIB_NS, "namespace", schema.namespace)
        schema_el = _sub(root, YANGLIB_NS, "schema")
        _sub(schema_el, YANGLIB_NS, "name", "complete")
        _sub(schema_el, YANGLIB_NS, "module-set", "complete")
        for store in ("running", "candidate", "operational"):
            entry = _sub(root, YANGLIB_NS, "datastore")
            _sub(entry, YANGLIB_NS, "name", f"ds:{store}")
            _sub(entry, YANGLIB_NS, "schema", "complete")
        _sub(root, YANGLIB_NS, "content-id", self.content_id)
        return root

    def _modules_state(self) -> etree._Element:
        """RFC 7895's ``modules-state`` (deprecated in RFC 8525, still read by clients)."""
        root = etree.Element(f"{{{YANGLIB_NS}}}modules-state", nsmap={None: YANGLIB_NS})  # type: ignore[dict-item]
        _sub(root, YANGLIB_NS, "module-set-id", self.content_id)
        modules, imports, subs = self._modules()
        for schema, conformance in [(m, "implement") for m in modules] + [
            (m, "import") for m in imports
        ]:
            entry = _sub(root, YANGLIB_NS, "module")
            _sub(entry, YANGLIB_NS, "name", schema.identifier)
            _sub(entry, YANGLIB_NS, "revision", schema.version)
            _sub(entry, YANGLIB_NS, "namespace", schema.namespace)
            _sub(entry, YANGLIB_NS, "conformance-type", conformance)
            for sub in subs.get(schema.identifier, []):
                sub_entry = _sub(entry, YANGLIB_NS, "submodule")
                _sub(sub_entry, YANGLIB_NS, "name", sub.identifier)
                _sub(sub_entry, YANGLIB_NS, "revision", sub.version)
        return root
