"""What esc_nc_cli puts on the wire, without a server."""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.cli import payloads
from esc_orch.cli.main import build_parser

ESC = payloads.ESC_NS
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def test_path_becomes_a_subtree_filter_in_the_esc_namespace() -> None:
    flt = payloads.path_filter("esc_datamodel/opdata")
    assert flt is not None
    assert flt.kind == "subtree"
    assert isinstance(flt.criteria, etree._Element)
    assert flt.criteria.tag == f"{{{ESC}}}esc_datamodel"
    assert flt.criteria[0].tag == f"{{{ESC}}}opdata"


def test_path_predicates_become_content_match_nodes() -> None:
    flt = payloads.path_filter("esc_datamodel/tenants/tenant[name='T1']/deployments")
    assert flt is not None
    assert isinstance(flt.criteria, etree._Element)
    tenant = flt.criteria.find(f".//{{{ESC}}}tenant")
    assert tenant is not None
    assert tenant.findtext(f"{{{ESC}}}name") == "T1"
    assert tenant.find(f"{{{ESC}}}deployments") is not None


def test_slash_path_is_xpath() -> None:
    flt = payloads.path_filter("/esc_datamodel/opdata")
    assert flt is not None
    assert flt.as_ncclient() == ("xpath", "/esc_datamodel/opdata")


@pytest.mark.parametrize("bad", ["a/b c", "a/b[name=x]", "a//b[1]"])
def test_bad_paths(bad: str) -> None:
    with pytest.raises(payloads.PayloadError):
        payloads.path_filter(bad)


def test_edit_file_is_wrapped_in_config() -> None:
    cfg = payloads.config_from_file(f'<esc_datamodel xmlns="{ESC}"/>'.encode())
    assert cfg.tag == f"{{{NC}}}config"
    assert cfg[0].tag == f"{{{ESC}}}esc_datamodel"
    already = payloads.config_from_file(f'<config xmlns="{NC}"><x/></config>'.encode())
    assert already.tag == f"{{{NC}}}config"


def test_tenant_and_deployment_payloads() -> None:
    cfg = payloads.tenant_config("T", operation="delete")
    tenant = cfg.find(f".//{{{ESC}}}tenant")
    assert tenant is not None
    assert tenant.get(f"{{{NC}}}operation") == "delete"
    dep = payloads.delete_deployment_config("T", "D").find(f".//{{{ESC}}}deployment")
    assert dep is not None
    assert dep.get(f"{{{NC}}}operation") == "delete"
    assert dep.findtext(f"{{{ESC}}}name") == "D"


def test_esc_rpc_payloads() -> None:
    rpc = payloads.service_action("STOP", "T", "D")
    assert rpc.tag == f"{{{ESC}}}serviceAction"
    assert [etree.QName(c).localname for c in rpc] == [
        "actionType",
        "tenantName",
        "depName",
        "serviceName",
        "serviceVersion",
    ]
    assert payloads.vm_action("REBOOT", "vm1", force=True).findtext(f"{{{ESC}}}force") == "true"
    assert payloads.recovery_vm_action("DO", "vm1").findtext(f"{{{ESC}}}vmName") == "vm1"


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for command in [
        "edit-config",
        "get-config",
        "get",
        "create-tenant",
        "delete-tenant",
        "delete-dep",
        "vm-action",
        "service-action",
        "recovery-vm-action",
    ]:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert command in capsys.readouterr().out
