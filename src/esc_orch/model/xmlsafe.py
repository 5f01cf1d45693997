"""Hardened XML parsing for everything that arrives from outside (NETCONF messages, payload files).

One parser configuration for the whole program: no DTDs, no entity expansion, no network
access, no huge-tree mode, and a byte limit checked before parsing. Billion-laughs and XXE
payloads are rejected rather than resolved, as ``malformed-message``.
"""

from __future__ import annotations

from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


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
            message="document type declarations and entities are not accepted",
        )
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise RpcError(
                tag=ErrorTag.MALFORMED_MESSAGE,
                type=error_type,
                message="entity references are not accepted",
            )
    return root
