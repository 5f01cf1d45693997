"""Builders for lifecycle tests: the seed deployment, the cluster's connectors, VM states.

Shared by tests/unit/reconcile and tests/unit/reactor (import as ``unit.reconcile.builders``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch.model.config import (
    Deployment,
    Flavor,
    Locator,
    Properties,
    Property,
    VimConnector,
    VmGroup,
)
from esc_orch.model.convert import unit_model
from esc_orch.reconcile import AppliedVm, ConnectorView, DesiredState, desired_vms
from esc_orch.vim import NicState, PowerState, Storage, VmSpec, VmState

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NS = {"e": "http://www.cisco.com/esc/esc"}
TENANT = "name1"


def uuids(start: int = 1) -> Iterator[str]:
    n = start
    while True:
        yield f"00000000-0000-4000-8000-{n:012d}"
        n += 1


def uuid_factory(start: int = 1) -> Any:
    gen = uuids(start)
    return lambda: next(gen)


def seed_deployment(example: str = "deploy_csp_1.xml") -> Deployment:
    tree = etree.parse(str(EXAMPLES / example))
    dep: Deployment = unit_model("deployment", tree.find(".//e:deployment", NS))
    return dep


def seed_flavors() -> dict[str, Flavor]:
    tree = etree.parse(str(EXAMPLES / "deploy_csp_1.xml"))
    flavor: Flavor = unit_model("flavor", tree.find(".//e:flavor", NS))
    bigger = Flavor(name="FLAVOR_4_8192", vcpus=4, memory_mb=8192, root_disk_mb=10240)
    return {flavor.name: flavor, bigger.name: bigger}


def connector(cid: str, *, cluster: bool = True, host: str | None = None) -> VimConnector:
    props = [Property(name="url", value="https://127.0.0.1:8441")]
    if cluster:
        props.append(Property(name="cluster_name", value="Cluster_Test"))
    if host:
        props.append(Property(name="host_name", value=host))
    return VimConnector(id=cid, type="FAKE", properties=Properties(property=tuple(props)))


def seed_connectors() -> dict[str, VimConnector]:
    """CSP-1..3 on one cluster; CSP-1-local is CSP-1's host without the cluster."""
    return {
        "CSP-1": connector("CSP-1", host="csp-1"),
        "CSP-2": connector("CSP-2", host="csp-2"),
        "CSP-3": connector("CSP-3", host="csp-3"),
        "CSP-1-local": connector("CSP-1-local", cluster=False, host="csp-1"),
        "CSP-1-cluster": connector("CSP-1-cluster", host="csp-1"),
    }


def group_of(dep: Deployment) -> VmGroup:
    return dep.vm_group[0]


def with_group(dep: Deployment, **changes: Any) -> Deployment:
    group = group_of(dep).model_copy(update=changes)
    return dep.model_copy(update={"vm_group": (group,)})


def with_locator(dep: Deployment, vim_id: str) -> Deployment:
    return with_group(dep, locator=Locator(vim_id=vim_id, vim_project=vim_id))


def with_storage(dep: Deployment, storage: str) -> Deployment:
    group = group_of(dep)
    exts = []
    for ext in group.extensions.extension:
        if ext.name == "image":
            props = tuple(
                Property(name=p.name, value=storage) if p.name == "disk_storage_name" else p
                for p in ext.properties.property
            )
            exts.append(ext.model_copy(update={"properties": Properties(property=props)}))
        else:
            exts.append(ext)
    return with_group(
        dep, extensions=group.extensions.model_copy(update={"extension": tuple(exts)})
    )


def desired_of(
    dep: Deployment,
    *,
    existing: tuple[Any, ...] = (),
    start: int = 1,
    connectors: dict[str, VimConnector] | None = None,
    **kw: Any,
) -> DesiredState:
    return desired_vms(
        deployment=dep,
        tenant=TENANT,
        flavors=seed_flavors(),
        connectors=seed_connectors() if connectors is None else connectors,
        existing_identities=existing,
        new_uuid=uuid_factory(start),
        **kw,
    )


def state_of(
    spec: VmSpec,
    *,
    host: str,
    power: PowerState = PowerState.RUNNING,
    storage: Storage | None = None,
    **changes: Any,
) -> VmState:
    fields: dict[str, Any] = {
        "name": spec.name,
        "power": power,
        "host": host,
        "storage": storage or spec.storage,
        "vim_id": f"vim-{host}-{spec.name[-4:]}",
        "vcpus": spec.vcpus,
        "memory_mb": spec.memory_mb,
        "disk_mb": spec.disk_mb,
        "image": spec.image,
        "interfaces": tuple(
            NicState(nicid=n.nicid, network=n.network, ip_address=n.ip_address, type=n.type)
            for n in spec.interfaces
        ),
    }
    fields.update(changes)
    return VmState(**fields)


HOSTS = {"CSP-1": "csp-1", "CSP-2": "csp-2", "CSP-3": "csp-3"}
HOSTS |= {"CSP-1-local": "csp-1", "CSP-1-cluster": "csp-1"}


def view(cid: str, *vms: VmState, reachable: bool = True) -> ConnectorView:
    if not reachable:
        return ConnectorView(connector_id=cid, reachable=False, detail="host unreachable")
    return ConnectorView(connector_id=cid, reachable=True, host=HOSTS[cid], vms=vms)


def applied(cid: str, spec: VmSpec) -> AppliedVm:
    return AppliedVm(connector_id=cid, vim_project=cid, spec=spec)
