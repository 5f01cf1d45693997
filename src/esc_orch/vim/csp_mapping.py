"""Translation between our VM types and the CSP ConfD "service" dialect, with no I/O.

This is the only place that knows CSP names (``iso_name``, ``numcpu``, ``vnics``...). It is pure
so the round trip spec → service → state is table-tested without a server.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from esc_orch.vim.errors import PermanentVimError
from esc_orch.vim.types import (
    DiskCopyProgress,
    HostInfo,
    NicSpec,
    NicState,
    NicType,
    PowerState,
    Storage,
    VmSpec,
    VmState,
)

MB_PER_GB = 1024


def _vnic(nic: NicSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nic": nic.nicid,
        "type": nic.type.value,
        "tagged": "true" if nic.tagged else "false",
        "model": nic.model,
        "network_name": nic.network,
        "admin_state": "up" if nic.admin_state_up else "down",
    }
    if nic.vlan is not None:
        out["vlan"] = str(nic.vlan)
    if nic.bandwidth is not None:
        out["bandwidth"] = str(nic.bandwidth)
    if nic.passthrough_mode is not None:
        out["passthrough_mode"] = nic.passthrough_mode
    if nic.ip_address is not None:
        out["ip_address"] = nic.ip_address
    if nic.netmask is not None:
        out["netmask"] = nic.netmask
    if nic.mac_address is not None:
        out["mac_address"] = nic.mac_address
    if nic.port_id is not None:
        out["port_id"] = nic.port_id
    return out


def spec_to_service(spec: VmSpec) -> dict[str, Any]:
    """The POST body creating ``spec`` (powered on)."""
    service: dict[str, Any] = {
        "name": spec.name,
        "numcpu": spec.vcpus,
        "memory": spec.memory_mb,
        "disk_size": max(1, math.ceil(spec.disk_mb / MB_PER_GB)),
        "iso_name": spec.image,
        "power": "on",
        "disk_storage_name": spec.storage.value,
        "disk_resize": "true" if spec.disk_resize else "false",
        "disk_type": spec.disk_type,
        "vnics": {"vnic": [_vnic(n) for n in spec.interfaces]},
        "serial_ports": {
            "serial_port": [
                {"serial": p.index, "serial_type": p.type.value} for p in spec.serial_ports
            ]
        },
    }
    if spec.day0:
        service["day0"] = {
            "day0_file": [
                {"dst": f.dst, "url": f.url}
                if f.url is not None
                else {"dst": f.dst, "content_base64": base64.b64encode(f.content or b"").decode()}
                for f in spec.day0
            ]
        }
    return {"service": service}


def _int(raw: dict[str, Any], key: str, default: int = 0) -> int:
    try:
        return int(raw.get(key, default))
    except (TypeError, ValueError):
        raise PermanentVimError(f"CSP sent a non-numeric {key}: {raw.get(key)!r}") from None


def _power(raw: dict[str, Any]) -> PowerState:
    oper = raw.get("oper_status")
    if oper is not None:
        return {
            "running": PowerState.RUNNING,
            "stopped": PowerState.STOPPED,
            "error": PowerState.ERROR,
        }.get(str(oper), PowerState.UNKNOWN)
    return {"on": PowerState.RUNNING, "off": PowerState.STOPPED}.get(
        str(raw.get("power")), PowerState.UNKNOWN
    )


def _storage(raw: dict[str, Any]) -> Storage:
    try:
        return Storage(str(raw.get("disk_storage_name", "local")))
    except ValueError:
        raise PermanentVimError(
            f"CSP sent unknown storage {raw.get('disk_storage_name')!r}"
        ) from None


def _vnics(raw: dict[str, Any]) -> list[dict[str, Any]]:
    vnics = raw.get("vnics") or {}
    items = vnics.get("vnic", []) if isinstance(vnics, dict) else []
    return [items] if isinstance(items, dict) else [i for i in items if isinstance(i, dict)]


def _disk_copy(raw: dict[str, Any], name: str) -> DiskCopyProgress | None:
    """The ``disk_copy`` object a service shows while its disk is being copied (ours)."""
    job = raw.get("disk_copy")
    if not isinstance(job, dict) or job.get("state", "running") != "running":
        return None
    try:
        to_storage: Storage | None = Storage(str(job.get("to_storage")))
    except ValueError:
        to_storage = None
    return DiskCopyProgress(
        name=name,
        bytes_done=_int(job, "bytes_copied"),
        bytes_total=_int(job, "bytes_total"),
        to_storage=to_storage,
    )


def service_to_state(raw: dict[str, Any], *, host: str) -> VmState:
    """A ``service`` object from GET as our :class:`VmState`."""
    if "name" not in raw:
        raise PermanentVimError("CSP sent a service without a name")
    nics = []
    for v in _vnics(raw):
        try:
            ntype = NicType(str(v.get("type", "access")))
        except ValueError:
            ntype = NicType.ACCESS
        nics.append(
            NicState(
                nicid=_int(v, "nic"),
                network=str(v.get("network_name", "")),
                port_id=v.get("port_id"),
                mac_address=v.get("mac_address"),
                ip_address=v.get("ip_address"),
                netmask=v.get("netmask"),
                type=ntype,
            )
        )
    return VmState(
        name=str(raw["name"]),
        power=_power(raw),
        host=str(raw.get("host_name", host)),
        storage=_storage(raw),
        vim_id=str(raw.get("uuid", raw["name"])),
        vcpus=_int(raw, "numcpu"),
        memory_mb=_int(raw, "memory"),
        disk_mb=_int(raw, "disk_size") * MB_PER_GB,
        image=str(raw.get("iso_name", "")),
        interfaces=tuple(sorted(nics, key=lambda n: n.nicid)),
        reason=raw.get("power_status_reason"),
        disk_copy=_disk_copy(raw, str(raw["name"])),
    )


def host_info(
    resource: dict[str, Any], cluster: dict[str, Any] | None, *, fallback_name: str
) -> HostInfo:
    """``resources/resource/csp-2100`` (and our ``cluster``) as :class:`HostInfo`."""
    storages: list[Storage] = [Storage.LOCAL]
    cluster_name = None
    if cluster:
        cluster_name = cluster.get("name") or None
        items = (cluster.get("storages") or {}).get("storage", [])
        names = {str(s.get("name")) for s in items if isinstance(s, dict)}
        storages = [s for s in Storage if s.value in names] or storages
    return HostInfo(
        name=str(resource.get("host_name", fallback_name)),
        ip_address=str(resource.get("ip_address", "")),
        ram_total_mb=_int(resource, "ram_total_mb"),
        ram_used_mb=_int(resource, "ram_used_mb"),
        cpus_total=_int(resource, "num_cpus_total"),
        cpus_used=_int(resource, "num_cpus_used"),
        num_services=_int(resource, "num_service"),
        storages=tuple(storages),
        cluster_name=cluster_name,
    )
