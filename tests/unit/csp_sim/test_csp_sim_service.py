"""Parsing of the POST body: what ConfD would reject is an InputError with a tag."""

from __future__ import annotations

from typing import Any

import pytest

from esc_orch.csp_sim.service import InputError, ServiceConfig


def _body(**overrides: Any) -> dict[str, Any]:
    service: dict[str, Any] = {
        "name": "vm1",
        "disk_size": "10",
        "power": "on",
        "iso_name": "img.qcow2",
        "numcpu": "2",
        "memory": "4096",
        "macid": 0,
        "vnics": {
            "vnic": [
                {
                    "nic": 0,
                    "type": "access",
                    "tagged": "false",
                    "vlan": "1",
                    "model": "virtio",
                    "network_name": "Eth0-2",
                }
            ]
        },
        "serial_ports": {
            "serial_port": [{"serial": 0, "serial_type": "telnet", "service_port": 8000}]
        },
    }
    service.update(overrides)
    return {"service": {k: v for k, v in service.items() if v is not None}}


def test_reference_body_parses_and_round_trips() -> None:
    cfg = ServiceConfig.parse(_body())
    assert (cfg.numcpu, cfg.memory, cfg.disk_size) == (2, 4096, 10)
    assert cfg.vnics[0].network_name == "Eth0-2" and cfg.serial_ports[0].service_port == 8000
    assert ServiceConfig.parse({"service": cfg.render()}) == cfg


@pytest.mark.parametrize(
    ("body", "tag"),
    [
        ([], "malformed-message"),
        ({"services": {}}, "malformed-message"),
        (_body(name=None), "missing-element"),
        (_body(numcpu=None), "missing-element"),
        (_body(numcpu="two"), "invalid-value"),
        (_body(power="maybe"), "invalid-value"),
        (_body(disk_storage_name="nfs"), "invalid-value"),
        (_body(vnics={"vnic": [{"nic": 0}]}), "missing-element"),
        (_body(vnics={"vnic": [{"nic": 0, "network_name": "n", "type": "x"}]}), "invalid-value"),
        (_body(name="../etc"), "invalid-value"),
        (_body(day0={"day0_file": [{"dst": "a"}]}), "invalid-value"),
    ],
)
def test_invalid_bodies(body: Any, tag: str) -> None:
    with pytest.raises(InputError) as info:
        ServiceConfig.parse(body)
    assert info.value.tag == tag
