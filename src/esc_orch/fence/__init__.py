"""Fence agents: out-of-band power control that proves a host is off before its VMs move.

Beside :mod:`esc_orch.vim` and built the same way: a typed protocol (:class:`FenceAgent`),
value types, typed failures, and discovery by type through the ``esc_orch.fence_agents`` entry
points. Depends only on the model and the VIM value types (an import-linter contract).
"""

from esc_orch.fence.errors import (
    FenceError,
    FenceFailure,
    FenceFailureKind,
    UnknownFenceAgentType,
)
from esc_orch.fence.protocol import FenceAgent
from esc_orch.fence.registry import (
    ENTRY_POINT_GROUP,
    create_fence_agent,
    fence_agent_class,
    known_fence_types,
)
from esc_orch.fence.types import (
    FenceAgentConfig,
    FenceMethod,
    FenceProof,
    FenceStatus,
    HostPower,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FenceAgent",
    "FenceAgentConfig",
    "FenceError",
    "FenceFailure",
    "FenceFailureKind",
    "FenceMethod",
    "FenceProof",
    "FenceStatus",
    "HostPower",
    "UnknownFenceAgentType",
    "create_fence_agent",
    "fence_agent_class",
    "known_fence_types",
]
