"""escEvent as a typed value: the one shape every part of esc-orch reports an outcome in.

ESC users learn what happened to their VNFs only from ``escEvent`` notifications, so the
event is data with a fixed wire form: :class:`EscEvent` holds the fields of
``notification escEvent`` in ``yang/esc.yang`` in the same order, and :func:`esc_event_xml`
renders them in that order, in the esc namespace, exactly as the seed's examples read.
:class:`LoggedEvent` is an event once the durable log has given it its id (the total order)
and its ``eventTime``; :func:`notification_xml` wraps it in the RFC 5277 envelope.

This module is pure: no clock, no I/O. The log (``esc_orch.store.events``) stamps the time,
the NETCONF layer (``esc_orch.northbound.notifications``) delivers the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from lxml import etree
from pydantic import BaseModel, ConfigDict

from esc_orch.model.schema import ESC_NS, NOTIF_NS

#: Namespace of ``replayComplete``, ``notificationComplete`` and ``netconf/streams`` (RFC 5277).
NETMOD_NOTIF_NS = "urn:ietf:params:xml:ns:netmod:notification"


class EventStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class VmUpdateType(StrEnum):
    """``vm-update-type`` of yang/esc-types.yang: what a VM_UPDATED event reports."""

    LOCATOR_UPDATED = "LOCATOR_UPDATED"
    FLAVOR_UPDATED = "FLAVOR_UPDATED"
    IMAGE_UPDATED = "IMAGE_UPDATED"
    INTERFACE_ADDED = "INTERFACE_ADDED"
    INTERFACE_DELETED = "INTERFACE_DELETED"
    INTERFACE_UPDATED = "INTERFACE_UPDATED"
    EXTENSIONS_UPDATED = "EXTENSIONS_UPDATED"
    CONFIG_DATA_UPDATED = "CONFIG_DATA_UPDATED"
    MONITORING_UPDATED = "MONITORING_UPDATED"


class EventType(StrEnum):
    """``event-type`` of yang/esc-types.yang (a unit test checks the two agree)."""

    CREATE_TENANT = "CREATE_TENANT"
    DELETE_TENANT = "DELETE_TENANT"
    CREATE_FLAVOR = "CREATE_FLAVOR"
    DELETE_FLAVOR = "DELETE_FLAVOR"
    CREATE_IMAGE = "CREATE_IMAGE"
    DELETE_IMAGE = "DELETE_IMAGE"
    CREATE_NETWORK = "CREATE_NETWORK"
    DELETE_NETWORK = "DELETE_NETWORK"
    CREATE_SUBNET = "CREATE_SUBNET"
    DELETE_SUBNET = "DELETE_SUBNET"
    CREATE_VIM_CONNECTOR = "CREATE_VIM_CONNECTOR"
    UPDATE_VIM_CONNECTOR = "UPDATE_VIM_CONNECTOR"
    DELETE_VIM_CONNECTOR = "DELETE_VIM_CONNECTOR"
    VIM_CONNECTION_STATE = "VIM_CONNECTION_STATE"
    VM_DEPLOYED = "VM_DEPLOYED"
    VM_ALIVE = "VM_ALIVE"
    SERVICE_ALIVE = "SERVICE_ALIVE"
    VM_UPDATED = "VM_UPDATED"
    SERVICE_UPDATED = "SERVICE_UPDATED"
    VM_UNDEPLOYED = "VM_UNDEPLOYED"
    SERVICE_UNDEPLOYED = "SERVICE_UNDEPLOYED"
    VM_STARTED = "VM_STARTED"
    VM_STOPPED = "VM_STOPPED"
    VM_REBOOTED = "VM_REBOOTED"
    VM_MONITOR_SET = "VM_MONITOR_SET"
    VM_MONITOR_UNSET = "VM_MONITOR_UNSET"
    SERVICE_STARTED = "SERVICE_STARTED"
    SERVICE_STOPPED = "SERVICE_STOPPED"
    SERVICE_REBOOTED = "SERVICE_REBOOTED"
    VM_RECOVERY_INIT = "VM_RECOVERY_INIT"
    VM_RECOVERY_REBOOT = "VM_RECOVERY_REBOOT"
    VM_RECOVERY_UNDEPLOYED = "VM_RECOVERY_UNDEPLOYED"
    VM_RECOVERY_DEPLOYED = "VM_RECOVERY_DEPLOYED"
    VM_RECOVERY_COMPLETE = "VM_RECOVERY_COMPLETE"
    VM_RECOVERY_CANCELLED = "VM_RECOVERY_CANCELLED"
    VM_SCALE_OUT_INIT = "VM_SCALE_OUT_INIT"
    VM_SCALE_OUT_DEPLOYED = "VM_SCALE_OUT_DEPLOYED"
    VM_SCALE_OUT_COMPLETE = "VM_SCALE_OUT_COMPLETE"
    VM_SCALE_IN_INIT = "VM_SCALE_IN_INIT"
    VM_SCALE_IN_COMPLETE = "VM_SCALE_IN_COMPLETE"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VmInterface(_Frozen):
    nicid: int
    type: str | None = None
    port_id: str | None = None
    admin_state_up: bool | None = None
    network: str | None = None
    subnet: str | None = None  # "" renders as <subnet/>, as CSP reports it
    ip_address: str | None = None
    mac_address: str | None = None
    netmask: str | None = None
    gateway: str | None = None


class VmInterfaces(_Frozen):
    interface: tuple[VmInterface, ...] = ()


class VmDetails(_Frozen):
    """``vm_source`` / ``vm_target`` (grouping vm-details)."""

    vmid: str | None = None
    vmname: str | None = None
    generated_vmname: str | None = None
    hostid: str | None = None
    hostname: str | None = None
    vim_id: str | None = None
    vim_project: str | None = None
    interfaces: VmInterfaces | None = None


class EventInfo(_Frozen):
    type: EventType
    details: str | None = None


class EscEvent(_Frozen):
    """One escEvent; fields in the order of the YANG notification (and of the wire)."""

    status: EventStatus | None = None
    status_code: int | None = None
    status_message: str | None = None
    vm_update_type: VmUpdateType | None = None
    depname: str | None = None
    tenant: str | None = None
    tenant_id: str | None = None
    depid: str | None = None
    vm_group: str | None = None
    vm_source: VmDetails | None = None
    vm_target: VmDetails | None = None
    event: EventInfo

    @classmethod
    def success(cls, event_type: EventType, message: str, **fields: Any) -> EscEvent:
        """SUCCESS / 200 with ``message``; ``details`` and the other fields by keyword."""
        details = fields.pop("details", None)
        return cls(
            status=EventStatus.SUCCESS,
            status_code=200,
            status_message=message,
            event=EventInfo(type=event_type, details=details),
            **fields,
        )

    @classmethod
    def failure(
        cls, event_type: EventType, message: str, *, status_code: int = 500, **fields: Any
    ) -> EscEvent:
        """FAILURE / 500 (or a 400-class code for rejected input) with ``message``."""
        details = fields.pop("details", None)
        return cls(
            status=EventStatus.FAILURE,
            status_code=status_code,
            status_message=message,
            event=EventInfo(type=event_type, details=details),
            **fields,
        )


# ------------------------------------------------------------------------- time


def format_event_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a ``+00:00`` offset, as the seed prints it."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+00:00"


def parse_event_time(text: str) -> datetime:
    """An RFC 3339 date-and-time (any offset, ``Z`` too) as an aware UTC datetime.

    Raises ``ValueError`` for anything else, including a time without an offset.
    """
    value = datetime.fromisoformat(text.strip().upper())
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return value.astimezone(UTC)


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch (how the log stores and orders times)."""
    utc = moment.astimezone(UTC)
    return int(utc.timestamp()) * 1000 + utc.microsecond // 1000


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis // 1000, UTC).replace(microsecond=(millis % 1000) * 1000)


# ------------------------------------------------------------------------- rendering


def _render_into(parent: etree._Element, model: BaseModel) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            for item in value:
                _render_into(etree.SubElement(parent, f"{{{ESC_NS}}}{name}"), item)
        elif isinstance(value, BaseModel):
            _render_into(etree.SubElement(parent, f"{{{ESC_NS}}}{name}"), value)
        else:
            leaf = etree.SubElement(parent, f"{{{ESC_NS}}}{name}")
            if isinstance(value, bool):
                leaf.text = "true" if value else "false"
            elif value != "":
                leaf.text = str(value)


def esc_event_element(event: EscEvent) -> etree._Element:
    """``<escEvent xmlns="http://www.cisco.com/esc/esc">`` with the fields in YANG order."""
    root = etree.Element(f"{{{ESC_NS}}}escEvent", nsmap={None: ESC_NS})  # type: ignore[dict-item]
    _render_into(root, event)
    return root


def esc_event_xml(event: EscEvent) -> bytes:
    """The serialized ``<escEvent>`` element (what the log stores)."""
    return etree.tostring(esc_event_element(event), encoding="utf-8")


def envelope(*, event_time: datetime, content: bytes) -> bytes:
    """An RFC 5277 ``<notification>`` around one serialized content element."""
    return (
        (
            f'<notification xmlns="{NOTIF_NS}"><eventTime>{format_event_time(event_time)}'
            "</eventTime>"
        ).encode()
        + content
        + b"</notification>"
    )


def replay_complete_xml(event_time: datetime) -> bytes:
    return envelope(
        event_time=event_time, content=f'<replayComplete xmlns="{NETMOD_NOTIF_NS}"/>'.encode()
    )


def notification_complete_xml(event_time: datetime) -> bytes:
    return envelope(
        event_time=event_time, content=f'<notificationComplete xmlns="{NETMOD_NOTIF_NS}"/>'.encode()
    )


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as the durable log holds it: id (total order), eventTime, rendered content."""

    id: int
    event_time: datetime
    event_type: str
    #: The serialized ``<escEvent>`` element.
    payload: bytes

    def notification_xml(self) -> bytes:
        return envelope(event_time=self.event_time, content=self.payload)


# ------------------------------------------------------------------------- parsing

_NESTED: dict[str, type[_Frozen]] = {
    "vm_source": VmDetails,
    "vm_target": VmDetails,
    "interfaces": VmInterfaces,
    "interface": VmInterface,
    "event": EventInfo,
}
_LISTS = frozenset({"interface"})


def _fields_of(element: etree._Element) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name in _NESTED:
            value: Any = _NESTED[name](**_fields_of(child))
        else:
            value = child.text or ""
        if name in _LISTS:
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def parse_esc_event(element: etree._Element) -> EscEvent:
    """The :class:`EscEvent` of an ``<escEvent>`` element (raises pydantic's ValidationError)."""
    return EscEvent(**_fields_of(element))
