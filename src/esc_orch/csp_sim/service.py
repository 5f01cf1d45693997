"""The CSP "service" record: parsing the POST body the way ConfD would, and rendering it back.

Kept free of I/O so the REST layer and the persisted state agree on one shape, and so input
checks (missing fields, wrong types) are tested without a server.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Power(StrEnum):
    ON = "on"
    OFF = "off"


class DiskStorage(StrEnum):
    LOCAL = "local"
    GLUSTER = "gluster"


class InputError(ValueError):
    """The body is well-formed JSON but not a valid service (400 with a ConfD error)."""

    def __init__(self, message: str, *, tag: str = "invalid-value") -> None:
        super().__init__(message)
        self.tag = tag


def _req(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise InputError(f"missing element: {key} in {where}", tag="missing-element")
    return obj[key]


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{key}: expected a number")
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{key}: {value!r} is not a number") from None
    if result < 0:
        raise InputError(f"{key}: must be >= 0")
    return result


def _bool(value: Any, key: str) -> bool:
    text = str(value).lower()
    if text in {"true", "1"}:
        return True
    if text in {"false", "0"}:
        return False
    raise InputError(f"{key}: {value!r} is not a boolean")


def _list(container: Any, inner: str, where: str) -> list[dict[str, Any]]:
    if container is None:
        return []
    if not isinstance(container, dict):
        raise InputError(f"{where}: expected an object")
    items = container.get(inner, [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InputError(f"{where}/{inner}: expected a list of objects")
    return items


@dataclass(frozen=True, slots=True, kw_only=True)
class Vnic:
    nic: int
    network_name: str
    type: str = "access"
    model: str = "virtio"
    vlan: str | None = None
    tagged: bool = False
    bandwidth: str | None = None
    passthrough_mode: str | None = None
    ip_address: str | None = None
    netmask: str | None = None
    mac_address: str | None = None
    admin_state: str = "up"
    #: A port id the client chooses (as with ports created beforehand elsewhere); the host
    #: generates one when absent.
    port_id: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Vnic:
        nic = _int(_req(raw, "nic", "vnic"), "nic")
        vtype = str(raw.get("type", "access"))
        if vtype not in {"access", "trunk"}:
            raise InputError(f"vnic {nic}: type {vtype!r} is not access or trunk")
        opt = {k: str(raw[k]) for k in ("vlan", "bandwidth", "passthrough_mode") if k in raw}
        addr = {k: str(raw[k]) for k in ("ip_address", "netmask", "mac_address") if k in raw}
        port_id = raw.get("port_id")
        if port_id is not None:
            port_id = str(port_id)
            if not port_id or len(port_id) > 64 or any(c.isspace() or c == "/" for c in port_id):
                raise InputError(f"vnic {nic}: invalid port_id {port_id!r}")
        return cls(
            nic=nic,
            network_name=str(_req(raw, "network_name", f"vnic {nic}")),
            type=vtype,
            model=str(raw.get("model", "virtio")),
            tagged=_bool(raw.get("tagged", "false"), "tagged"),
            admin_state=str(raw.get("admin_state", "up")),
            port_id=port_id,
            **opt,
            **addr,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nic": self.nic,
            "type": self.type,
            "tagged": str(self.tagged).lower(),
            "model": self.model,
            "network_name": self.network_name,
            "admin_state": self.admin_state,
        }
        for key in ("vlan", "bandwidth", "passthrough_mode", "ip_address", "netmask"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.mac_address is not None:
            out["mac_address"] = self.mac_address
        if self.port_id is not None:
            out["port_id"] = self.port_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialPort:
    serial: int
    serial_type: str
    service_port: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Day0:
    dst: str
    content_base64: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """What a client asks for; ``disk_size`` is in GB as on CSP, ``memory`` in MB."""

    name: str
    numcpu: int
    memory: int
    disk_size: int
    iso_name: str
    power: Power = Power.ON
    macid: int | None = None
    vnics: tuple[Vnic, ...] = ()
    serial_ports: tuple[SerialPort, ...] = ()
    disk_storage_name: DiskStorage = DiskStorage.LOCAL
    disk_resize: bool = False
    disk_type: str = "virtio"
    day0: tuple[Day0, ...] = field(default=())

    @classmethod
    def parse(cls, body: Any) -> ServiceConfig:
        if not isinstance(body, dict) or not isinstance(body.get("service"), dict):
            raise InputError('expected {"service": {...}}', tag="malformed-message")
        raw: dict[str, Any] = body["service"]
        name = str(_req(raw, "name", "service"))
        if not name or "/" in name or name.startswith("."):
            raise InputError(f"invalid service name {name!r}")
        try:
            power = Power(str(raw.get("power", "on")))
            storage = DiskStorage(str(raw.get("disk_storage_name", "local")))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        vnics = tuple(Vnic.parse(v) for v in _list(raw.get("vnics"), "vnic", "vnics"))
        if len({v.nic for v in vnics}) != len(vnics):
            raise InputError("duplicate vnic nic number")
        serials = tuple(
            SerialPort(
                serial=_int(_req(s, "serial", "serial_port"), "serial"),
                serial_type=str(s.get("serial_type", "console")),
                service_port=_int(s["service_port"], "service_port")
                if "service_port" in s
                else None,
            )
            for s in _list(raw.get("serial_ports"), "serial_port", "serial_ports")
        )
        day0 = []
        for d in _list(raw.get("day0"), "day0_file", "day0"):
            content, url = d.get("content_base64"), d.get("url")
            if (content is None) == (url is None):
                raise InputError("day0_file needs exactly one of content_base64 or url")
            if content is not None:
                try:
                    base64.b64decode(str(content), validate=True)
                except binascii.Error:
                    raise InputError("day0_file content_base64 is not base64") from None
            day0.append(
                Day0(
                    dst=str(_req(d, "dst", "day0_file")),
                    content_base64=None if content is None else str(content),
                    url=None if url is None else str(url),
                )
            )
        numcpu = _int(_req(raw, "numcpu", "service"), "numcpu")
        memory = _int(_req(raw, "memory", "service"), "memory")
        if numcpu == 0 or memory == 0:
            raise InputError("numcpu and memory must be > 0")
        return cls(
            name=name,
            numcpu=numcpu,
            memory=memory,
            disk_size=_int(_req(raw, "disk_size", "service"), "disk_size"),
            iso_name=str(_req(raw, "iso_name", "service")),
            power=power,
            macid=_int(raw["macid"], "macid") if "macid" in raw else None,
            vnics=vnics,
            serial_ports=serials,
            disk_storage_name=storage,
            disk_resize=_bool(raw.get("disk_resize", "false"), "disk_resize"),
            disk_type=str(raw.get("disk_type", "virtio")),
            day0=tuple(day0),
        )

    def render(self) -> dict[str, Any]:
        """The ``service`` object in the POST dialect (what ``parse`` reads back)."""
        out: dict[str, Any] = {
            "name": self.name,
            "numcpu": self.numcpu,
            "memory": self.memory,
            "disk_size": self.disk_size,
            "iso_name": self.iso_name,
            "power": self.power.value,
            "disk_storage_name": self.disk_storage_name.value,
            "disk_resize": str(self.disk_resize).lower(),
            "disk_type": self.disk_type,
            "vnics": {"vnic": [v.render() for v in self.vnics]},
            "serial_ports": {
                "serial_port": [
                    {"serial": s.serial, "serial_type": s.serial_type}
                    | ({} if s.service_port is None else {"service_port": s.service_port})
                    for s in self.serial_ports
                ]
            },
        }
        if self.macid is not None:
            out["macid"] = self.macid
        if self.day0:
            out["day0"] = {
                "day0_file": [
                    {"dst": d.dst}
                    | ({"content_base64": d.content_base64} if d.content_base64 else {})
                    | ({"url": d.url} if d.url else {})
                    for d in self.day0
                ]
            }
        return out
