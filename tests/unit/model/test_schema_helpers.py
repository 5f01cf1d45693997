"""Schema lookups the NETCONF layer relies on: list keys and ESC RPC input validation."""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.model.errors import RpcErrors
from esc_orch.model.schema import list_keys
from esc_orch.model.validate import require_valid_rpc
from payloads import ESC_NS, NC_NS


def test_list_keys_come_from_the_schema_whatever_the_wrapper() -> None:
    data = etree.fromstring(
        f'<data xmlns="{NC_NS}"><esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>t'
        "</name><deployments><deployment><name>d</name><vm_group><name>g</name><interfaces>"
        "<interface><nicid>0</nicid><network>n</network></interface></interfaces></vm_group>"
        "</deployment></deployments></tenant></tenants><opdata><tenants><tenant><name>t</name>"
        "<deployments><deployment_name>d</deployment_name></deployments></tenant></tenants>"
        "</opdata></esc_datamodel></data>".encode()
    )
    found = [(etree.QName(el).localname, list_keys(el)) for el in data.iter() if list_keys(el)]
    assert found == [
        ("tenant", ("name",)),
        ("deployment", ("name",)),
        ("vm_group", ("name",)),
        ("interface", ("nicid",)),
        ("tenant", ("name",)),  # opdata
        ("deployments", ("deployment_name",)),  # opdata
    ]
    interface_network = data.find(f".//{{{ESC_NS}}}interface/{{{ESC_NS}}}network")
    assert interface_network is not None and list_keys(interface_network) == ()


def test_esc_rpc_input_is_validated_by_the_module() -> None:
    body = "<actionType>REBOOT</actionType><vmName>v</vmName>"
    good = etree.fromstring(f'<vmAction xmlns="{ESC_NS}">{body}</vmAction>'.encode())
    require_valid_rpc(good)
    for body, tag in (
        ("<actionType>EXPLODE</actionType><vmName>v</vmName>", "invalid-value"),
        ("<actionType>STOP</actionType>", "missing-element"),
    ):
        with pytest.raises(RpcErrors) as info:
            require_valid_rpc(
                etree.fromstring(f'<vmAction xmlns="{ESC_NS}">{body}</vmAction>'.encode())
            )
        assert info.value.errors[0].tag == tag
