"""From a configured deployment to the VMs that should exist: names, specs and targets.

This is where ESC's payload vocabulary (flavor, interfaces + the ``interfaces`` extension,
``serial_ports``, the ``image`` extension, static IP pools, day-0 ``config_data``) becomes our
connector vocabulary (:class:`~esc_orch.vim.VmSpec`). It is pure: identities of VMs that already
exist are passed in, new uuids come from a provider, and every unsatisfiable setting is
collected into one :class:`UnsatisfiableDeployment` so the FAILURE event lists them all.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from esc_orch.model.config import (
    Configuration,
    Deployment,
    Flavor,
    Interface,
    VmGroup,
    default_connector,
)
from esc_orch.model.config import VimConnector as ConnectorConfig
from esc_orch.model.vim import (
    Day0File,
    NicSpec,
    NicType,
    SerialPortSpec,
    SerialType,
    Storage,
    VmSpec,
)
from esc_orch.reconcile.errors import (
    DesiredStateError,
    InvalidSetting,
    IpPoolTooSmall,
    NoDefaultConnector,
    StorageUnavailable,
    UnknownConnector,
    UnknownFlavor,
    UnsatisfiableDeployment,
)
from esc_orch.reconcile.identity import UuidFactory, VmIdentity, new_identity


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredVm:
    """One VM as the configuration wants it, and where."""

    identity: VmIdentity
    connector_id: str
    vim_project: str | None
    spec: VmSpec
    power_on: bool = True

    @property
    def name(self) -> str:
        return self.identity.name


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """What one deployment should be: its VMs, and the known VMs it no longer wants."""

    tenant: str
    deployment: str
    vms: tuple[DesiredVm, ...]
    #: Known identities no longer wanted (scale in, group removed, undeploy): delete them.
    retired: tuple[VmIdentity, ...] = ()
    #: Groups the deployment has or had: a VM named in one of them that nobody owns is an orphan.
    groups: frozenset[str] = frozenset()

    def identities(self) -> tuple[VmIdentity, ...]:
        return tuple(v.identity for v in self.vms) + self.retired


def undeploy_state(*, tenant: str, deployment: str, known: Iterable[VmIdentity]) -> DesiredState:
    """The desired state of a deleted deployment: no VM, every known one retired."""
    known = tuple(known)
    return DesiredState(
        tenant=tenant,
        deployment=deployment,
        vms=(),
        retired=known,
        groups=frozenset(k.group for k in known),
    )


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _bool(value: str, *, group: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise InvalidSetting(group=group, reason=f"{what} must be true or false, not {value!r}")


def _int(value: str, *, group: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidSetting(
            group=group, reason=f"{what} must be a number, not {value!r}"
        ) from None


def _container_props(group: VmGroup, extension: str, item: str) -> dict[str, str]:
    ext = group.extensions.find(extension)
    if ext is None:
        return {}
    for container in ext.containers.container:
        if container.name == item:
            return {p.name: p.value or "" for p in container.properties.property}
    return {}


def _pool_address(group: VmGroup, network: str, index: int) -> tuple[str, str | None] | None:
    """(address, netmask) the pool gives VM ``index`` on ``network``; None without a pool."""
    for pool in group.scaling.static_ip_address_pool:
        if pool.network != network:
            continue
        needed = group.scaling.min_active
        if pool.ip_address:
            if len(pool.ip_address) < needed:
                raise IpPoolTooSmall(
                    group=group.name, network=network, size=len(pool.ip_address), needed=needed
                )
            return pool.ip_address[index], pool.netmask
        if pool.ip_address_range is not None:
            try:
                start = ipaddress.ip_address(pool.ip_address_range.start)
                end = ipaddress.ip_address(pool.ip_address_range.end)
            except ValueError as exc:
                raise InvalidSetting(group=group.name, reason=f"ip_address_range: {exc}") from None
            size = int(end) - int(start) + 1
            if size < needed:
                raise IpPoolTooSmall(
                    group=group.name, network=network, size=max(0, size), needed=needed
                )
            return str(start + index), pool.netmask
        raise IpPoolTooSmall(group=group.name, network=network, size=0, needed=needed)
    return None


def _nic(group: VmGroup, interface: Interface, index: int) -> NicSpec:
    props = _container_props(group, "interfaces", str(interface.nicid))
    what = f"interfaces extension of nicid {interface.nicid}"
    raw_type = props.get("type", NicType.ACCESS.value)
    try:
        nic_type = NicType(raw_type.strip().lower())
    except ValueError:
        raise InvalidSetting(
            group=group.name, reason=f"{what}: type must be access or trunk, not {raw_type!r}"
        ) from None
    ip_address, netmask = interface.ip_address, interface.netmask
    pooled = _pool_address(group, interface.network, index)
    if pooled is not None:
        ip_address, netmask = pooled[0], netmask or pooled[1]
    elif ip_address is not None and group.scaling.min_active > 1:
        raise InvalidSetting(
            group=group.name,
            reason=f"interface {interface.nicid} has the fixed ip_address {ip_address} but "
            f"min_active is {group.scaling.min_active}: use a static_ip_address_pool",
        )
    return NicSpec(
        nicid=interface.nicid,
        network=interface.network,
        model=interface.model,
        type=nic_type,
        vlan=_int(props["vlan"], group=group.name, what=f"{what}: vlan")
        if props.get("vlan")
        else None,
        tagged=_bool(props.get("tagged", "false"), group=group.name, what=f"{what}: tagged"),
        bandwidth=_int(props["bandwidth"], group=group.name, what=f"{what}: bandwidth")
        if props.get("bandwidth")
        else None,
        ip_address=ip_address,
        netmask=netmask,
        mac_address=interface.mac_address,
        admin_state_up=interface.admin_state_up,
        passthrough_mode=props.get("passthroughMode") or None,
    )


def _serial_ports(group: VmGroup) -> tuple[SerialPortSpec, ...]:
    ext = group.extensions.find("serial_ports")
    if ext is None:
        return ()
    ports = []
    for container in ext.containers.container:
        index = _int(container.name, group=group.name, what="serial_ports container name")
        raw = container.properties.get("serial_type") or SerialType.CONSOLE.value
        try:
            kind = SerialType(raw.strip().lower())
        except ValueError:
            raise InvalidSetting(
                group=group.name,
                reason=f"serial port {index}: serial_type must be console or telnet, not {raw!r}",
            ) from None
        ports.append(SerialPortSpec(index=index, type=kind))
    return tuple(sorted(ports, key=lambda p: p.index))


def _variable_values(group: VmGroup, conf: Configuration, index: int) -> dict[str, str]:
    values: dict[str, str] = {}
    for var in conf.variable:
        if len(var.val) == 1:
            values[var.name] = var.val[0]
        elif index < len(var.val):
            values[var.name] = var.val[index]
        else:
            raise InvalidSetting(
                group=group.name,
                reason=f"config_data {conf.dst}: variable {var.name} has {len(var.val)} "
                f"value(s), none for VM index {index}: give one val per VM or a single val",
            )
    return values


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``$NAME`` and ``${NAME}`` of the declared variables; leave any other ``$``."""
    if not values:
        return text
    names = "|".join(re.escape(n) for n in sorted(values, key=len, reverse=True))
    pattern = re.compile(rf"\$\{{({names})\}}|\$({names})(?![A-Za-z0-9_])")
    return pattern.sub(lambda m: values[m.group(1) or m.group(2)], text)


def _day0(group: VmGroup, index: int) -> tuple[Day0File, ...]:
    files = []
    for conf in group.config_data.configuration:
        values = _variable_values(group, conf, index)
        if conf.data is not None:
            content = substitute(conf.data, values).encode()
            files.append(Day0File(dst=conf.dst, content=content))
        elif conf.file is not None:
            # The file is read where I/O is allowed; its variables are substituted there.
            files.append(Day0File(dst=conf.dst, url=conf.file))
        else:
            raise InvalidSetting(
                group=group.name, reason=f"config_data {conf.dst}: needs file or data"
            )
    return tuple(files)


def _storage(group: VmGroup, connector: ConnectorConfig) -> Storage:
    raw = group.disk_storage_name
    try:
        storage = Storage(raw.strip().lower())
    except ValueError:
        raise InvalidSetting(
            group=group.name,
            reason=f"image extension: disk_storage_name must be local or gluster, not {raw!r}",
        ) from None
    if storage is Storage.GLUSTER and not connector.properties.get("cluster_name"):
        raise StorageUnavailable(group=group.name, vim_id=connector.id, storage=raw)
    return storage


def group_spec(
    *, group: VmGroup, flavor: Flavor, connector: ConnectorConfig, name: str, index: int
) -> VmSpec:
    """The :class:`VmSpec` of VM ``index`` of ``group``; raises :class:`DesiredStateError`."""
    image_ext = group.extensions.find("image")
    props = image_ext.properties if image_ext else None
    disk_resize = props.get("disk-resize") if props else None
    return VmSpec(
        name=name,
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        disk_mb=flavor.root_disk_mb,
        image=group.image,
        interfaces=tuple(
            _nic(group, i, index) for i in sorted(group.interfaces.interface, key=lambda i: i.nicid)
        ),
        serial_ports=_serial_ports(group),
        storage=_storage(group, connector),
        disk_resize=_bool(disk_resize, group=group.name, what="image extension: disk-resize")
        if disk_resize
        else False,
        disk_type=(props.get("disk_type") if props else None) or "virtio",
        day0=_day0(group, index),
    )


def desired_vms(
    *,
    deployment: Deployment,
    tenant: str,
    flavors: Mapping[str, Flavor],
    connectors: Mapping[str, ConnectorConfig],
    existing_identities: Iterable[VmIdentity],
    new_uuid: UuidFactory,
    stopped: Collection[str] = (),
) -> DesiredState:
    """``scaling.min_active`` VMs per vm_group, keeping the identities of VMs that exist.

    ``existing_identities`` fill their (group, index) slot again, so a VM keeps its name and
    vmid across updates and moves; new slots get new identities from ``new_uuid``; known
    identities whose slot is gone are returned as ``retired``. ``stopped`` names VMs an
    action powered off (they are wanted, but not running).
    Raises :class:`UnsatisfiableDeployment` listing every problem.
    """
    known: dict[tuple[str, int], VmIdentity] = {}
    duplicates: list[VmIdentity] = []
    for ident in existing_identities:
        if ident.deployment != deployment.name:
            continue
        if known.setdefault(ident.slot, ident) != ident:
            duplicates.append(ident)  # a second VM claims the slot: it goes
    problems: list[DesiredStateError] = []
    vms: list[DesiredVm] = []
    used: set[tuple[str, int]] = set()
    for group in deployment.vm_group:
        flavor = flavors.get(group.flavor)
        vim_id = group.locator.vim_id or default_connector(connectors)
        connector = connectors.get(vim_id) if vim_id else None
        if flavor is None:
            problems.append(UnknownFlavor(group=group.name, flavor=group.flavor))
        if vim_id is None:
            problems.append(NoDefaultConnector(group=group.name))
        elif connector is None:
            problems.append(UnknownConnector(group=group.name, vim_id=vim_id))
        if flavor is None or connector is None:
            continue
        for index in range(group.scaling.min_active):
            slot = (group.name, index)
            ident = known.get(slot) or new_identity(
                deployment=deployment.name, group=group.name, index=index, new_uuid=new_uuid
            )
            used.add(slot)
            try:
                spec = group_spec(
                    group=group, flavor=flavor, connector=connector, name=ident.name, index=index
                )
            except DesiredStateError as exc:
                if all(str(p) != str(exc) for p in problems):
                    problems.append(exc)
                continue
            vms.append(
                DesiredVm(
                    identity=ident,
                    connector_id=connector.id,
                    vim_project=group.locator.vim_project,
                    spec=spec,
                    power_on=ident.name not in stopped,
                )
            )
    if problems:
        raise UnsatisfiableDeployment(deployment=deployment.name, problems=tuple(problems))
    retired = tuple(k for slot, k in sorted(known.items()) if slot not in used)
    retired += tuple(duplicates)
    groups = frozenset(g.name for g in deployment.vm_group) | {k.group for k in retired}
    return DesiredState(
        tenant=tenant, deployment=deployment.name, vms=tuple(vms), retired=retired, groups=groups
    )
