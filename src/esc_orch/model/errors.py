"""Errors as data: RFC 6241 ``rpc-error`` fields, produced by any layer, rendered by one function.

Every layer that can reject a request (XML parsing, YANG validation, the edit engine, the
datastore, the NETCONF session) returns or raises :class:`RpcError` values instead of ad-hoc
strings, so that the NETCONF layer renders them uniformly and tests can assert on the tag and
path rather than on message wording.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

NC_BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


class ErrorType(StrEnum):
    """RFC 6241 ``error-type``: the conceptual layer where the error occurred."""

    TRANSPORT = "transport"
    RPC = "rpc"
    PROTOCOL = "protocol"
    APPLICATION = "application"


class ErrorTag(StrEnum):
    """RFC 6241 Appendix A ``error-tag`` values."""

    IN_USE = "in-use"
    INVALID_VALUE = "invalid-value"
    TOO_BIG = "too-big"
    MISSING_ATTRIBUTE = "missing-attribute"
    BAD_ATTRIBUTE = "bad-attribute"
    UNKNOWN_ATTRIBUTE = "unknown-attribute"
    MISSING_ELEMENT = "missing-element"
    BAD_ELEMENT = "bad-element"
    UNKNOWN_ELEMENT = "unknown-element"
    UNKNOWN_NAMESPACE = "unknown-namespace"
    ACCESS_DENIED = "access-denied"
    LOCK_DENIED = "lock-denied"
    RESOURCE_DENIED = "resource-denied"
    ROLLBACK_FAILED = "rollback-failed"
    DATA_EXISTS = "data-exists"
    DATA_MISSING = "data-missing"
    OPERATION_NOT_SUPPORTED = "operation-not-supported"
    OPERATION_FAILED = "operation-failed"
    PARTIAL_OPERATION = "partial-operation"
    MALFORMED_MESSAGE = "malformed-message"


class ErrorSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class RpcError(Exception):
    """One ``rpc-error``. Raise it, or collect several in an :class:`RpcErrors`.

    ``info`` holds ``error-info`` children by local name (e.g. ``bad-element``,
    ``session-id``); they are rendered in the NETCONF base namespace.
    """

    tag: ErrorTag
    message: str
    type: ErrorType = ErrorType.APPLICATION
    path: str | None = None
    app_tag: str | None = None
    severity: ErrorSeverity = ErrorSeverity.ERROR
    info: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.tag}{where}: {self.message}"


class RpcErrors(Exception):
    """Several errors reported together (continue-on-error, or many validation failures)."""

    def __init__(self, errors: Iterable[RpcError]) -> None:
        self.errors: tuple[RpcError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("RpcErrors needs at least one error")
        super().__init__("; ".join(str(e) for e in self.errors))


def render_rpc_error(error: RpcError, *, nsmap: Mapping[str, str] | None = None) -> etree._Element:
    """Render one error as an ``<rpc-error>`` element in the NETCONF base namespace.

    ``nsmap`` declares the prefixes used in ``error-path`` (e.g. ``{"esc": ESC_NS}``) on the
    ``error-path`` element itself, so the path stays resolvable wherever the element is moved.
    """

    def sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{NC_BASE_NS}}}{name}")
        if text is not None:
            child.text = text
        return child

    root = etree.Element(f"{{{NC_BASE_NS}}}rpc-error", nsmap={None: NC_BASE_NS})  # type: ignore[dict-item]
    sub(root, "error-type", str(error.type))
    sub(root, "error-tag", str(error.tag))
    sub(root, "error-severity", str(error.severity))
    if error.app_tag:
        sub(root, "error-app-tag", error.app_tag)
    if error.path:
        path_el = etree.SubElement(
            root,
            f"{{{NC_BASE_NS}}}error-path",
            nsmap=dict(nsmap or {}),
        )
        path_el.text = error.path
    msg = sub(root, "error-message", error.message)
    msg.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    if error.info:
        info = sub(root, "error-info")
        for name, value in error.info.items():
            sub(info, name, value)
    return root
