"""Hardened XML parsing for everything that arrives from outside (NETCONF messages, payload files).

One parser configuration for the whole program: no DTDs, no entity expansion, no network
access, no huge-tree mode, and a byte limit checked before parsing. Billion-laughs and XXE
payloads are rejected rather than resolved, as ``malformed-message``.

The parser never touches the file system or the network. ``load_dtd=False`` alone does not
stop libxml2 from opening the external subset of ``<!DOCTYPE r SYSTEM "/path">`` or an
external parameter entity (``%x;``): that made the error differ between an existing and a
missing file (an oracle) and froze the daemon on a FIFO. So a document type declaration is
refused by a scan of the prolog *before* libxml2 sees the bytes, always with the same error,
and every parser carries a resolver that answers any external load with an empty document.
"""

from __future__ import annotations

import re

from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


_DOCTYPE_REFUSED = "document type declarations and entities are not accepted"
# The prolog before the root element: an XML declaration, comments, PIs and white space.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_BOM = b"\xef\xbb\xbf"


class _NoExternalLoads(etree.Resolver):
    """Answers every external load (DTD, entity, XInclude) with nothing: no file is opened."""

    def resolve(  # type: ignore[override]  # lxml-stubs omit the context argument
        self, system_url: str, public_id: str, context: object
    ) -> object:
        return self.resolve_string("", context)  # type: ignore[call-arg]


def _declares_doctype(raw: bytes) -> bool:
    """True when the prolog of ``raw`` holds a ``<!DOCTYPE`` (found without parsing)."""
    pos = len(_BOM) if raw.startswith(_BOM) else 0
    while True:
        match = _PROLOG_ITEM.match(raw, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    return raw[pos : pos + 9].upper() == b"<!DOCTYPE"


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternalLoads())
    return parser


_ALL_ATTRIBUTES = etree.XPath("@*", smart_strings=True)


def attribute_items(element: etree._Element) -> list[tuple[str, str]]:
    """``(name, value)`` of every attribute of ``element``, in linear time.

    lxml's ``attrib.items()`` / ``values()`` look each value up by name again, which is
    quadratic: 30,000 attributes took 6.7 s. The XPath ``@*`` reads them in one pass (0.3 s
    for 200,000). Names are Clark notation (``{uri}local``) as with ``attrib``.
    """
    result = _ALL_ATTRIBUTES(element)
    assert isinstance(result, list)
    return [(str(a.attrname), str(a)) for a in result]  # type: ignore[union-attr]


def parse_xml(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    error_type: ErrorType = ErrorType.RPC,
) -> etree._Element:
    """Parse untrusted XML, or raise :class:`RpcError`.

    ``too-big`` when ``data`` exceeds ``max_bytes``; ``malformed-message`` when it is not
    well-formed or declares a DTD or entities (refused, never expanded).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise RpcError(
            tag=ErrorTag.TOO_BIG,
            type=error_type,
            message=f"message of {len(raw)} bytes exceeds the limit of {max_bytes} bytes",
        )
    if _declares_doctype(raw):
        raise RpcError(tag=ErrorTag.MALFORMED_MESSAGE, type=error_type, message=_DOCTYPE_REFUSED)
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise RpcError(
            tag=ErrorTag.MALFORMED_MESSAGE, type=error_type, message=f"malformed XML: {exc}"
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # type: ignore[union-attr]
        raise RpcError(
            tag=ErrorTag.MALFORMED_MESSAGE,
            type=error_type,
            message=_DOCTYPE_REFUSED,
        )
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise RpcError(
                tag=ErrorTag.MALFORMED_MESSAGE,
                type=error_type,
                message="entity references are not accepted",
            )
    return root
