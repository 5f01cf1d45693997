"""Find fence agents by ``type`` through the ``esc_orch.fence_agents`` entry points.

As for VIM connectors: a third-party agent registers itself in its own package metadata, so
installing it is all it takes to make its type configurable. Nothing here lists them.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, cast

from esc_orch.fence.errors import UnknownFenceAgentType
from esc_orch.fence.protocol import FenceAgent
from esc_orch.fence.types import FenceAgentConfig

ENTRY_POINT_GROUP = "esc_orch.fence_agents"


class FenceAgentFactory(Protocol):
    """What an entry point names: a class (or callable) taking ``config=`` keyword-only."""

    def __call__(self, *, config: FenceAgentConfig) -> FenceAgent: ...


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name.upper(), ep)
    return found


def known_fence_types() -> list[str]:
    """Installed fence agent types, upper-case, sorted."""
    return sorted(_entry_points())


def fence_agent_class(type_name: str) -> FenceAgentFactory:
    """The factory registered for ``type_name`` (case-insensitive)."""
    eps = _entry_points()
    ep = eps.get(type_name.strip().upper())
    if ep is None:
        raise UnknownFenceAgentType(type_name, sorted(eps))
    return cast(FenceAgentFactory, ep.load())


def create_fence_agent(config: FenceAgentConfig) -> FenceAgent:
    """Build the fence agent that ``config.type`` names."""
    return fence_agent_class(config.type)(config=config)
