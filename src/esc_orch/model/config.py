"""Frozen pydantic models of the configuration, for the layers above the datastore.

YANG stays the one source of truth on the wire; these models are what the reconciler, the
connectors and the event code read. Field names are the YANG leaf names, defaults are the
YANG defaults, lists are tuples and non-presence containers always exist (empty when not
configured). ``tests/unit/model/test_models_cover_yang.py`` proves the two agree leaf for leaf.
Instances are built from validated XML by :func:`esc_orch.model.convert.unit_model`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Property(_Frozen):
    name: str
    value: str | None = None


class Properties(_Frozen):
    property: tuple[Property, ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the property ``name`` (``default`` when absent)."""
        for prop in self.property:
            if prop.name == name:
                return prop.value
        return default


class ExtensionContainer(_Frozen):
    name: str
    properties: Properties = Field(default_factory=Properties)


class ExtensionContainers(_Frozen):
    container: tuple[ExtensionContainer, ...] = ()


class Extension(_Frozen):
    name: str
    properties: Properties = Field(default_factory=Properties)
    containers: ExtensionContainers = Field(default_factory=ExtensionContainers)


class Extensions(_Frozen):
    extension: tuple[Extension, ...] = ()

    def find(self, name: str) -> Extension | None:
        return next((e for e in self.extension if e.name == name), None)


# -- resources -----------------------------------------------------------------------


class Flavor(_Frozen):
    name: str
    description: str | None = None
    vcpus: int
    memory_mb: int
    root_disk_mb: int
    ephemeral_disk_mb: int = 0
    swap_disk_mb: int = 0
    properties: Properties = Field(default_factory=Properties)


class Image(_Frozen):
    name: str
    src: str
    disk_format: str = "qcow2"
    container_format: str = "bare"
    serial_console: bool = False
    disk_bus: str | None = None
    properties: Properties = Field(default_factory=Properties)


class Subnet(_Frozen):
    name: str
    ipversion: str = "ipv4"
    address: str
    gateway: str | None = None
    dhcp: bool = False


class Network(_Frozen):
    name: str
    description: str | None = None
    shared: bool = True
    admin_state: bool = True
    vlan: int | None = None
    subnet: tuple[Subnet, ...] = ()


# -- vm_group -----------------------------------------------------------------------


class Locator(_Frozen):
    #: None: the group runs on the default VIM connector (see ``default_connector``).
    vim_id: str | None = None
    vim_project: str | None = None


class RecoveryPolicy(_Frozen):
    recovery_type: str = "AUTO"
    action_on_recovery: str = "REBOOT_THEN_REDEPLOY"
    max_retries: int = 3


class ForwardedPort(_Frozen):
    type: str
    protocol: str = "tcp"
    vnf_port: int
    external_port: int


class PortForwarding(_Frozen):
    port: tuple[ForwardedPort, ...] = ()


class Interface(_Frozen):
    nicid: int
    type: str = "virtual"
    model: str = "virtio"
    network: str
    subnet: str | None = None
    ip_address: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    mac_address: str | None = None
    admin_state_up: bool = True
    port_forwarding: PortForwarding = Field(default_factory=PortForwarding)


class Interfaces(_Frozen):
    interface: tuple[Interface, ...] = ()


class MetricCollector(_Frozen):
    type: str
    nicid: int | None = None
    poll_frequency: int = 3
    polling_unit: str = "seconds"
    continuous_alarm: bool = False
    properties: Properties = Field(default_factory=Properties)


class Kpi(_Frozen):
    event_name: str
    metric_value: int
    metric_cond: str
    metric_type: str = "UINT32"
    metric_occurrences_true: int = 1
    metric_occurrences_false: int = 1
    metric_collector: MetricCollector


class KpiData(_Frozen):
    enabled: bool = True
    kpi: tuple[Kpi, ...] = ()


class Volume(_Frozen):
    name: str
    volid: int
    size: int
    sizeunit: str = "GiB"
    bus: str = "virtio"
    type: str | None = None
    bootable: bool = False
    image: str | None = None


class Volumes(_Frozen):
    volume: tuple[Volume, ...] = ()


class Rule(_Frozen):
    event_name: str
    action: tuple[str, ...] = ()


class AdminRules(_Frozen):
    rule: tuple[Rule, ...] = ()


class Rules(_Frozen):
    admin_rules: AdminRules = Field(default_factory=AdminRules)


class Variable(_Frozen):
    name: str
    val: tuple[str, ...] = ()


class Configuration(_Frozen):
    dst: str
    file: str | None = None
    data: str | None = None
    variable: tuple[Variable, ...] = ()


class ConfigData(_Frozen):
    configuration: tuple[Configuration, ...] = ()


class IpAddressRange(_Frozen):
    start: str
    end: str


class StaticIpAddressPool(_Frozen):
    network: str
    netmask: str | None = None
    gateway: str | None = None
    ip_address: tuple[str, ...] = ()
    ip_address_range: IpAddressRange | None = None


class Scaling(_Frozen):
    min_active: int = 1
    max_active: int = 1
    elastic: bool = True
    static_ip_address_pool: tuple[StaticIpAddressPool, ...] = ()


class Placement(_Frozen):
    type: str | None = None
    enforcement: str = "strict"
    host: tuple[str, ...] = ()
    zone: str | None = None


class VmGroup(_Frozen):
    name: str
    description: str | None = None
    locator: Locator = Field(default_factory=Locator)
    vim_vm_name: str | None = None
    image: str
    flavor: str
    bootup_time: int
    recovery_wait_time: int = 0
    recovery_policy: RecoveryPolicy = Field(default_factory=RecoveryPolicy)
    interfaces: Interfaces = Field(default_factory=Interfaces)
    volumes: Volumes = Field(default_factory=Volumes)
    kpi_data: KpiData = Field(default_factory=KpiData)
    rules: Rules = Field(default_factory=Rules)
    config_data: ConfigData = Field(default_factory=ConfigData)
    scaling: Scaling = Field(default_factory=Scaling)
    placement: Placement = Field(default_factory=Placement)
    extensions: Extensions = Field(default_factory=Extensions)

    @property
    def disk_storage_name(self) -> str:
        """The storage asked for by the image extension (``local`` when not said)."""
        image = self.extensions.find("image")
        value = image.properties.get("disk_storage_name") if image else None
        return value or "local"


class PlacementGroup(_Frozen):
    name: str
    type: str
    enforcement: str = "strict"
    vm_group: tuple[str, ...] = ()


class InterGroupPlacement(_Frozen):
    target_vm_group_ref: str
    type: str
    vm_group_ref: tuple[str, ...] = ()
    enforcement: str = "strict"


class Policies(_Frozen):
    placement: tuple[InterGroupPlacement, ...] = ()
    placement_group: tuple[PlacementGroup, ...] = ()


class Locators(_Frozen):
    datacenter: str | None = None


class Deployment(_Frozen):
    name: str
    description: str | None = None
    vm_group: tuple[VmGroup, ...] = ()
    locators: Locators = Field(default_factory=Locators)
    policies: Policies = Field(default_factory=Policies)
    extensions: Extensions = Field(default_factory=Extensions)


class Tenant(_Frozen):
    """A tenant's own settings; its deployments are units of their own."""

    name: str
    description: str | None = None
    vim_mapping: bool = True
    managed_resource: bool = True
    extensions: Extensions = Field(default_factory=Extensions)


# -- VIM connectors -------------------------------------------------------------------


class Credentials(_Frozen):
    properties: Properties = Field(default_factory=Properties)


class VimUser(_Frozen):
    id: str
    credentials: Credentials = Field(default_factory=Credentials)


class VimUsers(_Frozen):
    user: tuple[VimUser, ...] = ()


class FenceAgentSettings(_Frozen):
    """Our augment of ESC's vim_connector (``eo:fence_agent``): the out-of-band power
    controller of the connector's host, which a move away from the silent host uses."""

    type: str
    url: str | None = None
    #: The host the controller must report; None: the connector's id.
    host: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    timeout: int = 10
    properties: Properties = Field(default_factory=Properties)


class VimConnector(_Frozen):
    id: str
    type: str
    properties: Properties = Field(default_factory=Properties)
    users: VimUsers = Field(default_factory=VimUsers)
    #: eo:fence_agent (yang/esc-orch.yang); None when the host has none.
    fence_agent: FenceAgentSettings | None = None

    @property
    def marked_default(self) -> bool:
        """Whether the property ``default`` names this connector the default one."""
        return (self.properties.get("default") or "").strip().lower() == "true"


def default_connector(connectors: Mapping[str, VimConnector]) -> str | None:
    """The id of the default VIM connector, None when there is none.

    ESC (user guide, "Managing VIM Connectors"): a single configured connector is the
    default; with several, the one named default is (ours: property ``default`` = ``true``).
    """
    if len(connectors) == 1:
        return next(iter(connectors))
    marked = [cid for cid, c in connectors.items() if c.marked_default]
    return marked[0] if len(marked) == 1 else None


#: Model class per unit kind (see esc_orch.model.units).
UNIT_MODELS: dict[str, type[_Frozen]] = {
    "flavor": Flavor,
    "image": Image,
    "network": Network,
    "tenant": Tenant,
    "deployment": Deployment,
    "vim_connector": VimConnector,
}
