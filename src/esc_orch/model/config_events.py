"""The escEvents a configuration commit produces, derived from its typed diff.

Tenants, flavors, images, networks and VIM connectors exist once they are committed: ESC
reports each creation and deletion as an event (CREATE_TENANT, DELETE_FLAVOR, ...; VIM
connectors also UPDATE_VIM_CONNECTOR). The datastore appends these events in the very
transaction that writes running (see ``SqlDatastore._write``), so an event exists if and
only if its change does. Deployments are not reported here: their events (SERVICE_ALIVE,
VM_DEPLOYED...) come from the lifecycle engine when the work is done.

Status messages are esc-orch's own (ESC does not publish them for these events), written in
ESC's style with the name in brackets; ``event/details`` holds the unit's key.
"""

from __future__ import annotations

from esc_orch.model.diff import ChangeKind, ConfigDiff, UnitChange
from esc_orch.model.events import EscEvent, EventType
from esc_orch.model.units import KINDS, UNIT_KINDS

_VERB = {
    ChangeKind.CREATED: ("CREATE", "created"),
    ChangeKind.UPDATED: ("UPDATE", "updated"),
    ChangeKind.DELETED: ("DELETE", "deleted"),
}
_LABEL = {
    "flavor": "Flavor",
    "image": "Image",
    "network": "Network",
    "tenant": "Tenant",
    "vim_connector": "VIM connector",
}


def config_events(diff: ConfigDiff) -> tuple[EscEvent, ...]:
    """One event per created, deleted (and, where ESC has the type, updated) unit.

    Order: creations in dependency order (connectors, flavors, images, networks, tenants),
    then updates, then deletions in reverse dependency order, each by key.
    """
    order = {kind.name: i for i, kind in enumerate(UNIT_KINDS)}
    vim_first = {**order, "vim_connector": -1}
    phases = {ChangeKind.CREATED: 0, ChangeKind.UPDATED: 1, ChangeKind.DELETED: 2}

    def sort_key(change: UnitChange) -> tuple[int, int, tuple[str, ...]]:
        phase = phases[change.change]
        rank = vim_first[change.unit.kind]
        return phase, -rank if phase == 2 else rank, change.unit.key

    events: list[EscEvent] = []
    for change in sorted(diff.changes, key=sort_key):
        noun = KINDS[change.unit.kind].event_noun
        if noun is None:
            continue
        verb, past = _VERB[change.change]
        try:
            event_type = EventType(f"{verb}_{noun}")
        except ValueError:
            continue  # ESC has no such event (e.g. UPDATE_TENANT)
        name = change.unit.key[-1]
        label = _LABEL.get(change.unit.kind, change.unit.kind)
        fields: dict[str, str] = {"details": change.unit.text_key}
        if change.unit.kind == "tenant":
            fields.update(tenant=name, tenant_id=name)
        events.append(
            EscEvent.success(event_type, f"{label} [{name}] {past} successfully", **fields)
        )
    return tuple(events)
