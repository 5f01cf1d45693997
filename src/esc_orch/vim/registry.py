"""Find connector classes by their ``type`` through the ``esc_orch.vim_connectors`` entry points.

Third-party connectors register themselves in their own package metadata; nothing here lists
them, so installing a package is all it takes to make a new VIM type configurable.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, cast

from esc_orch.vim.protocol import Connector
from esc_orch.vim.types import ConnectorConfig

ENTRY_POINT_GROUP = "esc_orch.vim_connectors"


class ConnectorFactory(Protocol):
    """What an entry point must name: a class (or callable) taking ``config=`` keyword-only."""

    def __call__(self, *, config: ConnectorConfig) -> Connector: ...


class UnknownConnectorType(LookupError):
    """No installed connector has this type."""

    def __init__(self, type_name: str, known: list[str]) -> None:
        shown = ", ".join(known) or "none installed"
        super().__init__(f"unknown VIM connector type {type_name!r} (known types: {shown})")
        self.type_name = type_name
        self.known = known


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name.upper(), ep)
    return found


def known_types() -> list[str]:
    """Installed connector types, upper-case, sorted."""
    return sorted(_entry_points())


def connector_class(type_name: str) -> ConnectorFactory:
    """The connector factory registered for ``type_name`` (case-insensitive)."""
    eps = _entry_points()
    ep = eps.get(type_name.strip().upper())
    if ep is None:
        raise UnknownConnectorType(type_name, sorted(eps))
    return cast(ConnectorFactory, ep.load())


def create_connector(config: ConnectorConfig) -> Connector:
    """Build the connector that ``config.type`` names."""
    return connector_class(config.type)(config=config)
