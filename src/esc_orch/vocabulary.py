"""What this installation can run, for the edit-time checks: collector types, rule actions,
fence agent types.

One answer for every entry point that validates configuration — the daemon's datastore and
``esc-orch-validate`` — so a payload the validator passes is not refused by the daemon (and
the other way round). Collector types are ICMPPing plus the names registered in the
``esc_orch.collectors`` entry-point group, read from the installed packages' metadata:
nothing is imported. Fence agent types likewise: the names of the ``esc_orch.fence_agents``
entry points (upper-case, as the fence registry matches them); a configured agent's own check
(``config_problems``) loads its class, only when a connector with one is checked.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from esc_orch.fence.settings import settings_problems
from esc_orch.model.semantics import Vocabulary

#: Entry-point group of metric collectors (the monitoring code registers them there).
COLLECTOR_GROUP = "esc_orch.collectors"
#: Entry-point group of fence agents (``esc_orch.fence.registry.ENTRY_POINT_GROUP``).
FENCE_GROUP = "esc_orch.fence_agents"


def installed_vocabulary() -> Vocabulary:
    """The collector and fence agent types installed here, with the built-in rule actions."""
    names = {ep.name for ep in entry_points(group=COLLECTOR_GROUP)}
    return Vocabulary(
        collector_types=frozenset({"ICMPPing", *names}),
        fence_types=installed_fence_types(),
        fence_check=settings_problems,
    )


def installed_fence_types() -> frozenset[str]:
    """The fence agent types installed here (upper-case)."""
    return frozenset(ep.name.upper() for ep in entry_points(group=FENCE_GROUP))
