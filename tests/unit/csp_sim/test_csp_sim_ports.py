"""Port ids a client chooses on create (disk-copy progress: the contract suite, over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_orch.csp_sim.host import CspHost, HostError
from esc_orch.csp_sim.service import InputError, ServiceConfig


def _host(root: Path, name: str, **kw: object) -> CspHost:
    return CspHost(
        name=name,
        state_dir=root / name / "state",
        local_dir=root / name / "local",
        gluster_dir=root / "gluster",
        cluster_name="Cluster_Test",
        **kw,  # type: ignore[arg-type]
    )


def _cfg(name: str, *ports: str | None, **extra: object) -> ServiceConfig:
    vnics = [
        {"nic": i, "network_name": "Eth0-2"} | ({"port_id": p} if p else {})
        for i, p in enumerate(ports)
    ]
    body = {
        "name": name,
        "numcpu": 1,
        "memory": 512,
        "disk_size": 1,
        "iso_name": "i.qcow2",
        "disk_storage_name": "gluster",
        "vnics": {"vnic": vnics},
        **extra,
    }
    return ServiceConfig.parse({"service": body})


def _ports(host: CspHost, name: str) -> list[str]:
    return [v["port_id"] for v in host.render(host.get(name))["vnics"]["vnic"]]


def test_chosen_port_ids_are_kept_and_survive_a_restart(tmp_path: Path) -> None:
    a = _host(tmp_path, "CSP-1")
    a.create(_cfg("vm1", "port-a", None))
    ports = _ports(a, "vm1")
    assert ports[0] == "port-a" and ports[1] and ports[1] != "port-a"
    again = _host(tmp_path, "CSP-1")
    again.load()
    assert _ports(again, "vm1") == ports


def test_the_same_port_ids_on_another_host_after_a_move(tmp_path: Path) -> None:
    a, b = _host(tmp_path, "CSP-1"), _host(tmp_path, "CSP-2")
    a.create(_cfg("vm1", "p0", "p1"))
    a.delete("vm1", keep_disk=True)
    b.create(_cfg("vm1", "p0", "p1"))
    assert _ports(b, "vm1") == ["p0", "p1"]


def test_a_port_id_in_use_on_the_host_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    a = _host(tmp_path, "CSP-1")
    a.create(_cfg("vm1", "p0"))
    with pytest.raises(HostError) as info:
        a.create(_cfg("vm2", "p0"))
    assert (info.value.status, info.value.tag) == (409, "data-exists")
    assert "vm2" not in a.services
    assert not (tmp_path / "gluster" / "vm2.qcow2").exists()
    with pytest.raises(HostError):
        a.create(_cfg("vm3", "dup", "dup"))


@pytest.mark.parametrize("bad", ["", "a b", "x/y", "p" * 65])
def test_invalid_port_ids_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError):
        ServiceConfig.parse(
            {
                "service": {
                    "name": "v",
                    "numcpu": 1,
                    "memory": 1,
                    "disk_size": 1,
                    "iso_name": "i",
                    "vnics": {"vnic": [{"nic": 0, "network_name": "n", "port_id": bad}]},
                }
            }
        )
