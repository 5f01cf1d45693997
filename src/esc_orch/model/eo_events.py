"""Notifications of our own (module ``esc-orch``), for what no ESC ``escEvent`` type says.

ESC clients read ``escEvent``; when esc-orch must tell them something ESC has no event type
for, sending an escEvent of a wrong type would mislead them (a VM_UNDEPLOYED for a stale copy
removed from a returning host would read as "your VM is gone"). Such facts are notifications
of ``yang/esc-orch.yang`` instead, delivered on the same ``escEvent`` stream and kept in the
same durable log (so they are replayed like the others), in the ``eo`` namespace.

:class:`StaleCopyRemoved` (``eo:stale-copy-removed``): a host that was down came back holding
a copy of a VM that had moved away; the orchestrator removed that copy, keeping the disk when
it is the shared one the VM now runs on. Its sentence is rendered here, in
:func:`stale_copy_message`, and nowhere else.

This module is pure: no clock, no I/O (the log stamps ``eventTime``, which is "when").
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from lxml import etree
from pydantic import BaseModel, ConfigDict

from esc_orch.model.events import EscEvent, esc_event_xml
from esc_orch.model.schema import EO_NS


class StaleCopyAction(StrEnum):
    """``stale-copy-action`` of yang/esc-orch.yang: what was done with the copy."""

    REMOVED_DISK_KEPT = "removed-disk-kept"
    REMOVED = "removed"


class StaleCopyRemoved(BaseModel):
    """``notification stale-copy-removed``; fields in the order of the YANG (and the wire)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    depname: str
    tenant: str
    depid: str
    vm_group: str
    vmid: str | None = None
    vmname: str
    #: The VIM connector of the host the copy was found on, and that host's name.
    vim_id: str
    hostname: str | None = None
    #: The copy's power when it was found (``running`` means it ran before removal).
    power_found: str | None = None
    #: The VIM connector the VM is placed on now (absent when the deployment is undeployed).
    placed_on: str | None = None
    action: StaleCopyAction
    message: str

    NAME: ClassVar[str] = "stale-copy-removed"


def stale_copy_message(
    *, vm_name: str, connector_id: str, disk_kept: bool, power_found: str | None,
    placed_on: str | None,
) -> str:  # fmt: skip
    """The one sentence of an ``eo:stale-copy-removed``."""
    ran = " (it was running)" if power_found == "running" else ""
    where = f"; {vm_name} is placed on {placed_on}" if placed_on else ""
    disk = (
        ", keeping its shared disk (the VM's own)" if disk_kept else ", with its disk on that host"
    )
    return (
        f"Stale copy of VM [{vm_name}] found on VIM connector [{connector_id}]{ran} "
        f"was removed{disk}{where}"
    )


def stale_copy_removed(
    *, depname: str, tenant: str, depid: str, vm_group: str, vmid: str | None, vmname: str,
    vim_id: str, hostname: str | None, power_found: str | None, placed_on: str | None,
    disk_kept: bool,
) -> StaleCopyRemoved:  # fmt: skip
    """The notification, its message rendered from the same facts."""
    return StaleCopyRemoved(
        depname=depname, tenant=tenant, depid=depid, vm_group=vm_group, vmid=vmid,
        vmname=vmname, vim_id=vim_id, hostname=hostname, power_found=power_found,
        placed_on=placed_on,
        action=StaleCopyAction.REMOVED_DISK_KEPT if disk_kept else StaleCopyAction.REMOVED,
        message=stale_copy_message(
            vm_name=vmname, connector_id=vim_id, disk_kept=disk_kept,
            power_found=power_found, placed_on=placed_on,
        ),
    )  # fmt: skip


#: What the durable log holds and the escEvent stream delivers: ESC's event, or ours.
LogEntry = EscEvent | StaleCopyRemoved


def entry_type(entry: LogEntry) -> str:
    """The log's ``event_type`` column: ESC's event type, or ``eo:<notification>``."""
    if isinstance(entry, EscEvent):
        return str(entry.event.type)
    return f"eo:{entry.NAME}"


def eo_notification_element(entry: StaleCopyRemoved) -> etree._Element:
    root = etree.Element(f"{{{EO_NS}}}{entry.NAME}", nsmap={None: EO_NS})  # type: ignore[dict-item]
    for name in type(entry).model_fields:
        value = getattr(entry, name)
        if value is not None:
            etree.SubElement(root, f"{{{EO_NS}}}{name}").text = str(value)
    return root


def entry_xml(entry: LogEntry) -> bytes:
    """The serialized notification content the log stores (``<escEvent>`` or ours)."""
    if isinstance(entry, EscEvent):
        return esc_event_xml(entry)
    return etree.tostring(eo_notification_element(entry), encoding="utf-8")


def parse_stale_copy_removed(element: etree._Element) -> StaleCopyRemoved:
    """The value of an ``<eo:stale-copy-removed>`` element (tests, clients)."""
    fields = {etree.QName(c).localname: c.text or "" for c in element if isinstance(c.tag, str)}
    return StaleCopyRemoved.model_validate(fields)
