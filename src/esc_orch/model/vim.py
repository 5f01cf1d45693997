"""The vocabulary every VIM connector speaks: our own frozen value types.

They live in the model layer because the planner (``reconcile``), the reactor, the store (which
journals specs) and the connectors (``vim``) all speak them, and none of those may import
another sideways. ``esc_orch.vim.types`` re-exports them for connector code.

Hypervisor dialects (a CSP "service" with "vnics" and an "iso_name", an OpenStack "server"...)
stop at the connector. The reconciler and reactor only ever see the types below, so a new
connector is a translation layer and nothing above it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Capability(StrEnum):
    """What a connector can do beyond create/read/delete; checked before use."""

    POWER = "power"  # power_on / power_off
    REBOOT = "reboot"  # reboot in place
    DISK_COPY = "disk-copy"  # copy_disk between storages
    SHARED_STORAGE = "shared-storage"  # disks on storage every host of a cluster sees
    EVENTS = "events"  # watch() is pushed by the VIM, not polled
    PORT_IDS = "port-ids"  # the caller may choose interfaces' port ids on create


class PowerState(StrEnum):
    """Observed power state of a VM."""

    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"  # the VIM knows the VM but it is in a failed state
    UNKNOWN = "unknown"


class Storage(StrEnum):
    """Where a VM's disk lives: on the host, or on the cluster's shared volume."""

    LOCAL = "local"
    GLUSTER = "gluster"


class NicType(StrEnum):
    ACCESS = "access"
    TRUNK = "trunk"


class SerialType(StrEnum):
    CONSOLE = "console"
    TELNET = "telnet"


@dataclass(frozen=True, slots=True, kw_only=True)
class NicSpec:
    """One wanted interface (esc_datamodel interface + the `interfaces` extension)."""

    nicid: int
    network: str
    model: str = "virtio"
    type: NicType = NicType.ACCESS
    vlan: int | None = None
    tagged: bool = False
    bandwidth: int | None = None  # Mb/s
    ip_address: str | None = None
    netmask: str | None = None
    mac_address: str | None = None
    admin_state_up: bool = True
    passthrough_mode: str | None = None
    #: The port id to create the interface with (kept across a move); only for connectors that
    #: declare :attr:`Capability.PORT_IDS`. ``None``: the VIM chooses.
    port_id: str | None = None

    def __post_init__(self) -> None:
        if self.nicid < 0:
            raise ValueError(f"nicid must be >= 0, got {self.nicid}")
        if not self.network:
            raise ValueError(f"interface {self.nicid} has no network")


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialPortSpec:
    index: int
    type: SerialType = SerialType.CONSOLE


@dataclass(frozen=True, slots=True, kw_only=True)
class Day0File:
    """A day-0 configuration file: its destination and either inline content or a URL."""

    dst: str
    content: bytes | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.content is None) == (self.url is None):
            raise ValueError(f"day-0 file {self.dst!r} needs exactly one of content or url")


@dataclass(frozen=True, slots=True, kw_only=True)
class VmSpec:
    """Everything needed to create one VM; the VM's identity is its ``name``."""

    name: str
    vcpus: int
    memory_mb: int
    disk_mb: int
    image: str
    interfaces: tuple[NicSpec, ...] = ()
    serial_ports: tuple[SerialPortSpec, ...] = ()
    storage: Storage = Storage.LOCAL
    disk_resize: bool = False
    disk_type: str = "virtio"
    day0: tuple[Day0File, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid VM name {self.name!r}")
        for attr in ("vcpus", "memory_mb", "disk_mb"):
            if getattr(self, attr) <= 0:
                raise ValueError(f"{attr} must be > 0")
        if not self.image:
            raise ValueError("image is required")
        ids = [n.nicid for n in self.interfaces]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate nicid in {ids}")
        ports = [n.port_id for n in self.interfaces if n.port_id is not None]
        if len(ports) != len(set(ports)):
            raise ValueError(f"duplicate port_id in {ports}")

    @property
    def chooses_port_ids(self) -> bool:
        """Whether any interface asks for a port id (needs :attr:`Capability.PORT_IDS`)."""
        return any(n.port_id is not None for n in self.interfaces)

    def with_port_ids(self, ports: Mapping[int, str | None]) -> VmSpec:
        """The same spec asking for these port ids (by nicid); other interfaces unchanged.

        What a move uses to keep the interfaces' port ids, from the ``NicState`` of the VM
        where it ran (``{n.nicid: n.port_id for n in state.interfaces}``).
        """
        nics = tuple(
            replace(n, port_id=ports[n.nicid]) if ports.get(n.nicid) else n for n in self.interfaces
        )
        return replace(self, interfaces=nics)

    def without_port_ids(self) -> VmSpec:
        """The spec letting the VIM choose every port id (for a connector without PORT_IDS)."""
        return replace(self, interfaces=tuple(replace(n, port_id=None) for n in self.interfaces))


@dataclass(frozen=True, slots=True, kw_only=True)
class NicState:
    """An interface as the VIM reports it."""

    nicid: int
    network: str
    port_id: str | None = None
    mac_address: str | None = None
    ip_address: str | None = None
    netmask: str | None = None
    type: NicType = NicType.ACCESS


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskCopyProgress:
    """Progress of a disk copy (fraction in [0, 1]): handed to ``copy_disk``'s callback, and
    part of the VM's observation (:attr:`VmState.disk_copy`) while the copy runs."""

    name: str
    bytes_done: int
    bytes_total: int
    to_storage: Storage | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.bytes_total == 0 else min(1.0, self.bytes_done / self.bytes_total)


@dataclass(frozen=True, slots=True, kw_only=True)
class VmState:
    """A VM as observed on the VIM. ``vim_id`` is the VIM's own id (stable on that host)."""

    name: str
    power: PowerState
    host: str
    storage: Storage
    vim_id: str
    vcpus: int
    memory_mb: int
    disk_mb: int
    image: str
    interfaces: tuple[NicState, ...] = ()
    reason: str | None = None  # why the VM is stopped/in error, when the VIM says
    disk_copy: DiskCopyProgress | None = None  # a disk copy of this VM in progress


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo:
    """Facts about the host (or cluster member) behind a connector."""

    name: str
    ip_address: str
    ram_total_mb: int
    ram_used_mb: int
    cpus_total: int
    cpus_used: int
    num_services: int
    storages: tuple[Storage, ...]
    cluster_name: str | None = None


class VmChangeKind(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class VmChange:
    """One difference between two observations of a VIM (what ``watch`` yields)."""

    kind: VmChangeKind
    name: str
    before: VmState | None
    after: VmState | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A user on the VIM. The password is never part of ``repr`` (and so of logs)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorConfig:
    """What the configuration (``vim_connector[id]``) gives a connector.

    ``properties`` carries the connector-specific settings by name, e.g. for CSP: ``url``,
    ``cluster_name``, ``ca_file``, ``insecure``, ``timeout``.
    """

    id: str
    type: str
    properties: Mapping[str, str] = field(default_factory=dict)
    credentials: Credentials | None = None

    def prop(self, name: str, default: str | None = None) -> str | None:
        return self.properties.get(name, default)

    def flag(self, name: str) -> bool:
        return (self.properties.get(name) or "").strip().lower() in {"1", "true", "yes", "on"}
