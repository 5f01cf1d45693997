"""What this installation can run, for the edit-time checks: collector types and rule actions.

One answer for every entry point that validates configuration — the daemon's datastore and
``esc-orch-validate`` — so a payload the validator passes is not refused by the daemon (and
the other way round). Collector types are ICMPPing plus the names registered in the
``esc_orch.collectors`` entry-point group, read from the installed packages' metadata:
nothing is imported.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from esc_orch.model.semantics import Vocabulary

#: Entry-point group of metric collectors (the monitoring code registers them there).
COLLECTOR_GROUP = "esc_orch.collectors"


def installed_vocabulary() -> Vocabulary:
    """The collector types installed here, with the built-in rule actions."""
    names = {ep.name for ep in entry_points(group=COLLECTOR_GROUP)}
    return Vocabulary(collector_types=frozenset({"ICMPPing", *names}))
