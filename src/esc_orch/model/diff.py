"""The typed result of a commit: which units changed and how, down to vm_group fields.

The reconciler and the event code consume this instead of re-reading the datastore: a
deployment change carries its before/after models and, per vm_group, the set of top-level
fields that changed (``locator``, ``extensions``, ``flavor``...), which is what decides
between an in-place update, a re-creation and a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from esc_orch.model.config import Deployment, VimConnector, VmGroup
from esc_orch.model.convert import unit_model
from esc_orch.model.units import UnitId


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class UnitChange:
    unit: UnitId
    change: ChangeKind
    before: bytes | None
    after: bytes | None

    @cached_property
    def before_model(self) -> Any:
        return unit_model(self.unit.kind, self.before) if self.before is not None else None

    @cached_property
    def after_model(self) -> Any:
        return unit_model(self.unit.kind, self.after) if self.after is not None else None


@dataclass(frozen=True)
class VmGroupChange:
    name: str
    change: ChangeKind
    #: Top-level vm_group fields whose value changed (empty for created/deleted).
    fields: frozenset[str]
    before: VmGroup | None
    after: VmGroup | None


@dataclass(frozen=True)
class DeploymentChange:
    tenant: str
    name: str
    change: ChangeKind
    before: Deployment | None
    after: Deployment | None
    vm_groups: tuple[VmGroupChange, ...]


@dataclass(frozen=True)
class ConnectorChange:
    id: str
    change: ChangeKind
    before: VimConnector | None
    after: VimConnector | None


def _group_changes(
    before: Deployment | None, after: Deployment | None
) -> tuple[VmGroupChange, ...]:
    old = {g.name: g for g in (before.vm_group if before else ())}
    new = {g.name: g for g in (after.vm_group if after else ())}
    changes: list[VmGroupChange] = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if was is None:
            changes.append(VmGroupChange(name, ChangeKind.CREATED, frozenset(), None, now))
        elif now is None:
            changes.append(VmGroupChange(name, ChangeKind.DELETED, frozenset(), was, None))
        elif was != now:
            fields = frozenset(
                f for f in VmGroup.model_fields if getattr(was, f) != getattr(now, f)
            )
            changes.append(VmGroupChange(name, ChangeKind.UPDATED, fields, was, now))
    return tuple(changes)


@dataclass(frozen=True)
class ConfigDiff:
    """Everything one commit changed, in unit order; ``txid`` orders commits."""

    txid: int
    changes: tuple[UnitChange, ...]

    @property
    def empty(self) -> bool:
        return not self.changes

    def of_kind(self, kind: str) -> tuple[UnitChange, ...]:
        return tuple(c for c in self.changes if c.unit.kind == kind)

    def deployments(self) -> tuple[DeploymentChange, ...]:
        out = []
        for c in self.of_kind("deployment"):
            tenant, name = c.unit.key
            out.append(
                DeploymentChange(
                    tenant=tenant,
                    name=name,
                    change=c.change,
                    before=c.before_model,
                    after=c.after_model,
                    vm_groups=_group_changes(c.before_model, c.after_model),
                )
            )
        return tuple(out)

    def vim_connectors(self) -> tuple[ConnectorChange, ...]:
        return tuple(
            ConnectorChange(c.unit.key[0], c.change, c.before_model, c.after_model)
            for c in self.of_kind("vim_connector")
        )


def diff_units(
    before: dict[UnitId, bytes | None], after: dict[UnitId, bytes | None], *, txid: int
) -> ConfigDiff:
    """Compare two states of the same set of units."""
    changes: list[UnitChange] = []
    for unit in sorted(before.keys() | after.keys()):
        was, now = before.get(unit), after.get(unit)
        if was == now:
            continue
        if was is None:
            kind = ChangeKind.CREATED
        elif now is None:
            kind = ChangeKind.DELETED
        else:
            kind = ChangeKind.UPDATED
        changes.append(UnitChange(unit, kind, was, now))
    return ConfigDiff(txid=txid, changes=tuple(changes))
