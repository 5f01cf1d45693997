"""The recovery events: VM_RECOVERY_* notices, their messages, and the escEvent they become.

Kept apart from the policy (:mod:`esc_orch.reconcile.recovery`) so the wording — byte for
byte the seed's where it shows them — is in one place and the policy reads as control flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from esc_orch.model.events import EscEvent, EventInfo, EventStatus, EventType, VmDetails
from esc_orch.reconcile.identity import VmIdentity

# ------------------------------------------------------------------------------ messages
# Reference §5, byte for byte where the seed shows them; the others are ours, same style.


def init_message(name: str) -> str:
    return f"Recovery event for VM Generated ID [{name}] triggered."


def reboot_message(name: str, *, ok: bool) -> str:
    return f"VM [{name}] rebooted." if ok else f"VM [{name}] failed to be rebooted."


def undeployed_message(name: str, *, ok: bool) -> str:
    return f"VM [{name}] undeployed." if ok else f"VM [{name}] failed to be undeployed."


def deployed_message(name: str, *, ok: bool) -> str:
    return f"VM [{name}] redeployed." if ok else f"VM [{name}] failed to be redeployed."


def complete_message(name: str, *, ok: bool) -> str:
    if ok:
        return f"Recovery: Successfully recovered VM [{name}]."
    return f"Recovery: Recovery completed with errors for VM: [{name}]"


def cancelled_message(name: str) -> str:
    return f"Recovery: Recovery cancelled for VM: [{name}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryNotice:
    """A VM_RECOVERY_* event to emit (rendered by :func:`recovery_event`)."""

    event: EventType
    ok: bool
    vm_name: str
    source: VmIdentity
    target: VmIdentity | None = None
    connector_id: str = ""
    failure: str | None = None

    @property
    def message(self) -> str:
        name = self.vm_name
        match self.event:
            case EventType.VM_RECOVERY_INIT:
                return init_message(name)
            case EventType.VM_RECOVERY_REBOOT:
                return reboot_message(name, ok=self.ok)
            case EventType.VM_RECOVERY_UNDEPLOYED:
                return undeployed_message(name, ok=self.ok)
            case EventType.VM_RECOVERY_DEPLOYED:
                return deployed_message(name, ok=self.ok)
            case EventType.VM_RECOVERY_COMPLETE:
                return complete_message(name, ok=self.ok)
            case _:
                return cancelled_message(name)


def recovery_event(
    notice: RecoveryNotice,
    *,
    depname: str,
    tenant: str,
    tenant_id: str | None,
    depid: str,
    vm_group: str,
    source: VmDetails,
    target: VmDetails | None = None,
) -> EscEvent:
    """The escEvent of a notice; ``source``/``target`` as the reactor renders VM details."""
    with_target = notice.event in (EventType.VM_RECOVERY_DEPLOYED, EventType.VM_RECOVERY_COMPLETE)
    return EscEvent(
        status=EventStatus.SUCCESS if notice.ok else EventStatus.FAILURE,
        status_code=200 if notice.ok else 500,
        status_message=notice.message,
        depname=depname,
        tenant=tenant,
        tenant_id=tenant_id or tenant,
        depid=depid,
        vm_group=vm_group,
        vm_source=source,
        vm_target=(target or source) if with_target else None,
        event=EventInfo(type=notice.event),
    )
