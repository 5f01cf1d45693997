"""VM identity: who a VM is, independent of where it runs.

ESC names a VM ``<deployment>_<group>_<index>_<uuid>`` and that name is both ``vmname`` and
``generated_vmname``; ``vmid`` is a second uuid. Both are chosen once, when the VM is first
planned, and never change: an update, a re-creation or a move to another host keeps them. The
name is also the VM's identity on every connector (the connector contract says so), which is
what makes ``ensure_vm`` idempotent and a crash resumable. uuids come from a caller-supplied
provider so planning stays deterministic under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from esc_orch.model.lifecycle import VmIdentity, is_uuid, vm_name

UuidFactory = Callable[[], str]

__all__ = [
    "ParsedName",
    "UuidFactory",
    "VmIdentity",
    "adopt_identities",
    "new_identity",
    "parse_vm_name",
    "vm_name",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedName:
    group: str
    index: int
    uuid: str


def parse_vm_name(name: str, *, deployment: str) -> ParsedName | None:
    """Split a generated name of ``deployment``; ``None`` when it is not one.

    Parsed from the right (uuid, then index) so group names may contain underscores. A name of
    deployment ``dep_x`` also parses for deployment ``dep`` (group ``x_...``): callers only
    trust a parse whose group they know (see :func:`adopt_identities`).
    """
    prefix = f"{deployment}_"
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].rsplit("_", 2)
    if len(parts) != 3:
        return None
    group, index, uuid = parts
    if not group or not index.isdigit() or not is_uuid(uuid):
        return None
    return ParsedName(group=group, index=int(index), uuid=uuid)


def new_identity(*, deployment: str, group: str, index: int, new_uuid: UuidFactory) -> VmIdentity:
    """A fresh identity: the name's uuid first, then the vmid (provider order is fixed)."""
    return VmIdentity(
        deployment=deployment, group=group, index=index, uuid=new_uuid(), vmid=new_uuid()
    )


def adopt_identities(
    *,
    deployment: str,
    groups: Iterable[str],
    observed_names: Iterable[str],
    known: Iterable[VmIdentity],
    new_uuid: UuidFactory,
) -> tuple[VmIdentity, ...]:
    """Identities for VMs found on the VIMs that fill a slot nobody known fills.

    The safety net when the orchestrator lost its memory (no opdata, journal gone): a VM named
    like ours in a known group is taken back rather than a second one created beside it. The
    first name (sorted) wins a slot; other claimants stay orphans. The vmid cannot be read back
    from the name, so an adopted VM gets a new one.
    """
    group_set = set(groups)
    taken = {k.slot for k in known}
    known_names = {k.name for k in known}
    adopted: list[VmIdentity] = []
    for name in sorted(set(observed_names) - known_names):
        parsed = parse_vm_name(name, deployment=deployment)
        if parsed is None or parsed.group not in group_set:
            continue
        slot = (parsed.group, parsed.index)
        if slot in taken:
            continue
        taken.add(slot)
        adopted.append(
            VmIdentity(
                deployment=deployment,
                group=parsed.group,
                index=parsed.index,
                uuid=parsed.uuid,
                vmid=new_uuid(),
            )
        )
    return tuple(adopted)
