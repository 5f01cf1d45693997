"""desired_vms: the seed payload becomes the right VmSpec; unsatisfiable settings are typed."""

from __future__ import annotations

import pytest

from esc_orch.model.config import (
    ConfigData,
    Configuration,
    Deployment,
    IpAddressRange,
    Locator,
    Properties,
    Property,
    Scaling,
    StaticIpAddressPool,
    Variable,
    VimConnector,
)
from esc_orch.reconcile import (
    InvalidSetting,
    IpPoolTooSmall,
    NoDefaultConnector,
    StorageUnavailable,
    UnknownConnector,
    UnknownFlavor,
    UnsatisfiableDeployment,
    substitute,
)
from esc_orch.vim import Day0File, NicType, SerialType, Storage
from unit.reconcile.builders import (
    desired_of,
    group_of,
    seed_connectors,
    seed_deployment,
    with_group,
    with_locator,
    with_storage,
)

POOL = StaticIpAddressPool(
    network="Eth0-2", netmask="255.255.255.0", gateway="192.168.23.1", ip_address=("10.0.0.1",)
)


def test_seed_payload_gives_one_vm_with_the_full_spec() -> None:
    state = desired_of(seed_deployment())
    (vm,) = state.vms
    assert vm.name == "dep_Group1_0_00000000-0000-4000-8000-000000000001"
    assert vm.identity.vmid == "00000000-0000-4000-8000-000000000002"
    assert (vm.connector_id, vm.vim_project) == ("CSP-1", "CSP-1")
    spec = vm.spec
    assert (spec.vcpus, spec.memory_mb, spec.disk_mb) == (2, 4096, 10240)
    assert spec.image == "csr1000v-universalk9.16.06.01.qcow2"
    assert spec.storage is Storage.GLUSTER
    assert spec.disk_resize is True and spec.disk_type == "virtio"
    nic0, nic1 = spec.interfaces
    assert (nic0.type, nic0.vlan, nic0.tagged, nic0.passthrough_mode) == (
        NicType.ACCESS,
        1,
        False,
        "none",
    )
    assert (nic0.ip_address, nic0.netmask) == ("192.168.23.61", "255.255.255.0")
    assert (nic1.vlan, nic1.bandwidth, nic1.admin_state_up) == (2, 160, False)
    assert [p.type for p in spec.serial_ports] == [SerialType.CONSOLE]
    assert spec.day0 == (Day0File(dst="iosxe_config.txt", url="file:///var/tmp/csr_config.sh"),)
    assert state.retired == () and state.groups == {"Group1"}


def test_identity_is_kept_across_a_locator_change() -> None:
    first = desired_of(seed_deployment())
    moved = desired_of(
        with_locator(seed_deployment(), "CSP-2"), existing=first.identities(), start=100
    )
    assert moved.vms[0].identity == first.vms[0].identity
    assert moved.vms[0].connector_id == "CSP-2"


def test_scale_out_keeps_index_0_and_scale_in_retires_the_rest() -> None:
    base = seed_deployment()
    pool = POOL.model_copy(update={"ip_address": ("10.0.0.1", "10.0.0.2", "10.0.0.3")})
    three = with_group(
        base, scaling=Scaling(min_active=3, max_active=3, static_ip_address_pool=(pool,))
    )
    one = desired_of(base)
    grown = desired_of(three, existing=one.identities(), start=10)
    assert grown.vms[0].identity == one.vms[0].identity
    assert [v.identity.index for v in grown.vms] == [0, 1, 2]
    assert [v.spec.interfaces[0].ip_address for v in grown.vms] == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]
    shrunk = desired_of(base, existing=grown.identities())
    assert [v.identity for v in shrunk.vms] == [one.vms[0].identity]
    assert [r.index for r in shrunk.retired] == [1, 2]


def test_range_pool_gives_addresses_by_index() -> None:
    pool = StaticIpAddressPool(
        network="Eth0-2", ip_address_range=IpAddressRange(start="10.1.0.250", end="10.1.1.1")
    )
    dep = with_group(
        seed_deployment(), scaling=Scaling(min_active=4, static_ip_address_pool=(pool,))
    )
    ips = [v.spec.interfaces[1].ip_address for v in desired_of(dep).vms]
    assert ips == ["10.1.0.250", "10.1.0.251", "10.1.0.252", "10.1.0.253"]


@pytest.mark.parametrize(
    ("pool", "size"),
    [
        (POOL, 1),
        (
            StaticIpAddressPool(
                network="Eth0-2", ip_address_range=IpAddressRange(start="10.0.0.9", end="10.0.0.9")
            ),
            1,
        ),
    ],
)
def test_pool_too_small_is_a_typed_error(pool: StaticIpAddressPool, size: int) -> None:
    dep = with_group(
        seed_deployment(), scaling=Scaling(min_active=2, static_ip_address_pool=(pool,))
    )
    with pytest.raises(UnsatisfiableDeployment) as info:
        desired_of(dep)
    (problem,) = info.value.problems
    assert isinstance(problem, IpPoolTooSmall)
    assert (problem.size, problem.needed, problem.group) == (size, 2, "Group1")
    assert "add addresses or lower min_active" in str(info.value)


def test_unknown_flavor_and_connector_are_reported_together() -> None:
    dep = with_group(with_locator(seed_deployment(), "CSP-9"), flavor="NOPE")
    with pytest.raises(UnsatisfiableDeployment) as info:
        desired_of(dep)
    kinds = [type(p) for p in info.value.problems]
    assert kinds == [UnknownFlavor, UnknownConnector]
    assert "CSP-9" in str(info.value) and "NOPE" in str(info.value)


def test_gluster_on_a_connector_without_cluster_is_refused() -> None:
    with pytest.raises(UnsatisfiableDeployment) as info:
        desired_of(with_locator(seed_deployment(), "CSP-1-local"))
    assert isinstance(info.value.problems[0], StorageUnavailable)
    assert "cluster_name" in str(info.value)
    assert desired_of(with_storage(with_locator(seed_deployment(), "CSP-1-local"), "local")).vms


def test_fixed_ip_with_several_vms_needs_a_pool() -> None:
    dep = with_group(seed_deployment(), scaling=Scaling(min_active=2))
    with pytest.raises(UnsatisfiableDeployment) as info:
        desired_of(dep)
    assert all(isinstance(p, InvalidSetting) for p in info.value.problems)
    assert "static_ip_address_pool" in str(info.value)


def test_bad_extension_values_are_invalid_settings() -> None:
    dep = with_storage(seed_deployment(), "nfs")
    with pytest.raises(UnsatisfiableDeployment, match="local or gluster, not 'nfs'"):
        desired_of(dep)


def test_inline_day0_substitutes_variables_by_vm_index() -> None:
    conf = Configuration(
        dst="day0.cfg",
        data="hostname $HOST\nip ${IP} $UNKNOWN $HOSTNAME",
        variable=(Variable(name="HOST", val=("a", "b")), Variable(name="IP", val=("1.1.1.1",))),
    )
    pool = POOL.model_copy(update={"ip_address": ("10.0.0.1", "10.0.0.2")})
    dep = with_group(
        seed_deployment(),
        config_data=ConfigData(configuration=(conf,)),
        scaling=Scaling(min_active=2, static_ip_address_pool=(pool,)),
    )
    contents = [v.spec.day0[0].content for v in desired_of(dep).vms]
    assert contents == [
        b"hostname a\nip 1.1.1.1 $UNKNOWN $HOSTNAME",
        b"hostname b\nip 1.1.1.1 $UNKNOWN $HOSTNAME",
    ]


def test_day0_variable_without_a_value_for_the_index_is_refused() -> None:
    conf = Configuration(dst="x", data="$A", variable=(Variable(name="A", val=("1", "2")),))
    pool = POOL.model_copy(update={"ip_address": ("10.0.0.1", "10.0.0.2", "10.0.0.3")})
    dep = with_group(
        seed_deployment(),
        config_data=ConfigData(configuration=(conf,)),
        scaling=Scaling(min_active=3, static_ip_address_pool=(pool,)),
    )
    with pytest.raises(UnsatisfiableDeployment, match="none for VM index 2"):
        desired_of(dep)


def test_substitute_leaves_text_without_variables_alone() -> None:
    assert substitute("$A$B ${A}", {}) == "$A$B ${A}"
    assert substitute("$AB $A", {"A": "x"}) == "$AB x"


def test_stopped_vms_are_wanted_powered_off() -> None:
    first = desired_of(seed_deployment())
    again = desired_of(seed_deployment(), existing=first.identities(), stopped={first.vms[0].name})
    assert again.vms[0].power_on is False
    assert group_of(seed_deployment()).name == "Group1"


def _unplaced() -> Deployment:
    return with_group(seed_deployment(), locator=Locator())


def _marked(conn: VimConnector) -> VimConnector:
    props = (*conn.properties.property, Property(name="default", value="true"))
    return conn.model_copy(update={"properties": Properties(property=props)})


def test_a_group_without_locator_runs_on_the_single_connector() -> None:
    only = {"CSP-1": seed_connectors()["CSP-1"]}
    state = desired_of(_unplaced(), connectors=only)
    assert [vm.connector_id for vm in state.vms] == ["CSP-1"]
    assert state.vms[0].vim_project is None


def test_with_several_connectors_the_one_marked_default_is_used() -> None:
    connectors = seed_connectors()
    connectors["CSP-2"] = _marked(connectors["CSP-2"])
    state = desired_of(_unplaced(), connectors=connectors)
    assert [vm.connector_id for vm in state.vms] == ["CSP-2"]


def test_with_several_connectors_and_no_default_the_group_is_unplaceable() -> None:
    with pytest.raises(UnsatisfiableDeployment) as info:
        desired_of(_unplaced())
    assert [type(p) for p in info.value.problems] == [NoDefaultConnector]
    assert "default = true" in str(info.value)
