"""The host core without HTTP: persistence, locks across hosts, restart, disk copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_orch.csp_sim.host import CspHost, HostError
from esc_orch.csp_sim.service import DiskStorage, Power, ServiceConfig


def _host(root: Path, name: str) -> CspHost:
    return CspHost(
        name=name,
        state_dir=root / name / "state",
        local_dir=root / name / "local",
        gluster_dir=root / "gluster",
        cluster_name="Cluster_Test",
        ram_total_mb=8192,
        cpus_total=4,
    )


def _cfg(name: str = "vm1", storage: str = "gluster", **extra: object) -> ServiceConfig:
    body = {
        "name": name,
        "numcpu": 2,
        "memory": 2048,
        "disk_size": 1,
        "iso_name": "i.qcow2",
        "disk_storage_name": storage,
        **extra,
    }
    return ServiceConfig.parse({"service": body})


def test_gluster_disk_runs_on_one_host_and_restart_stays_off(tmp_path: Path) -> None:
    a, b = _host(tmp_path, "CSP-1"), _host(tmp_path, "CSP-2")
    a.create(_cfg())
    with pytest.raises(HostError) as info:
        b.create(_cfg())
    assert info.value.status == 409 and info.value.tag == "in-use"
    assert b.render(b.get("vm1"))["oper_status"] == "stopped"  # kept, off, with a reason
    assert "locked" in b.render(b.get("vm1"))["power_status_reason"]
    b.delete("vm1")  # the disk is in use by CSP-1: never unlinked
    assert (tmp_path / "gluster" / "vm1.qcow2").exists()
    # CSP-1 "dies" holding the lock; CSP-2 runs the VM; CSP-1 comes back.
    b.create(_cfg(power="off"))
    for entry in a.services.values():
        assert entry.lock is not None
        entry.lock.release()
    b.set_power("vm1", Power.ON)
    again = _host(tmp_path, "CSP-1")
    again.load()
    stale = again.render(again.get("vm1"))
    assert stale["oper_status"] == "stopped" and stale["power"] == "off"
    assert "restart after host recovery failed" in stale["power_status_reason"]
    saved = json.loads(again.state_file.read_text())
    assert saved["services"][0]["service"]["power"] == "off"


def test_resources_are_enforced_and_counted(tmp_path: Path) -> None:
    a = _host(tmp_path, "CSP-1")
    a.create(_cfg("v1", "local"))
    a.create(_cfg("v2", "local"))
    with pytest.raises(HostError, match=r"memory|vCPUs"):
        a.create(_cfg("v3", "local"))
    res = a.resources()
    assert (res["ram_used_mb"], res["num_cpus_used"], res["num_service"]) == (4096, 4, 3)


async def test_copy_moves_a_stopped_disk_to_gluster(tmp_path: Path) -> None:
    a = _host(tmp_path, "CSP-1")
    a.create(_cfg("vm1", "local"))
    with pytest.raises(HostError, match="power it off"):
        a.start_copy("vm1", DiskStorage.GLUSTER)
    a.set_power("vm1", Power.OFF)
    job, task = a.start_copy("vm1", DiskStorage.GLUSTER)
    await task
    assert job.state == "done" and job.done == job.total == 1 << 30
    assert a.get("vm1").config.disk_storage_name is DiskStorage.GLUSTER
    assert not (tmp_path / "CSP-1" / "local" / "vm1.qcow2").exists()
    assert (tmp_path / "gluster" / "vm1.qcow2").exists()
    a.set_power("vm1", Power.ON)
    assert a.get("vm1").running
