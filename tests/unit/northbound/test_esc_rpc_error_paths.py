"""Every error-path an ESC RPC refusal carries is prefixed on each step (``/esc:a/esc:b``)."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from esc_orch.model.errors import RpcError
from esc_orch.northbound.esc_rpcs import parse_vm_action
from nbsupport.inproc import InprocClient
from unit.northbound.test_nb_ops import ESC, NC, error_tag, make_core

_STEP = re.compile(r"esc:[A-Za-z_][\w.-]*(\[[^]]*\])*")


def fully_prefixed(path: str) -> bool:
    return path.startswith("/") and all(_STEP.fullmatch(s) for s in path[1:].split("/"))


@pytest.mark.parametrize(
    ("body", "tag", "path"),
    [
        (
            "<vmAction><actionType>EXPLODE</actionType><vmName>v</vmName></vmAction>",
            "invalid-value",
            "/esc:vmAction/esc:actionType",
        ),
        (
            "<recoveryVmAction><actionType>DO</actionType></recoveryVmAction>",
            "missing-element",
            "/esc:recoveryVmAction/esc:vmName",
        ),
        (
            "<vmAction><actionType>STOP</actionType><vmName>v</vmName>"
            "<force>yes</force></vmAction>",
            "invalid-value",
            "/esc:vmAction/esc:force",
        ),
    ],
)
async def test_rpc_refusals_have_fully_prefixed_paths(body: str, tag: str, path: str) -> None:
    body = body.replace(">", f' xmlns="{ESC}">', 1)
    reply = await InprocClient(make_core()).rpc(body)
    assert error_tag(reply) == tag
    assert reply.findtext(f".//{{{NC}}}error-path") == path
    assert fully_prefixed(path)


def test_the_prefix_check_itself() -> None:
    assert fully_prefixed("/esc:vmAction/esc:vmName")
    assert fully_prefixed("/esc:esc_datamodel/esc:tenants/esc:tenant[esc:name='a']")
    assert not fully_prefixed("/esc:vmAction/vmName")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ("<actionType>EXPLODE</actionType><vmName>v</vmName>", "/esc:vmAction/esc:actionType"),
        ("<actionType>STOP</actionType><vmName>v</vmName><y/>", "/esc:vmAction/esc:y"),
        ("<actionType>STOP</actionType><vmName>v</vmName><force>maybe</force>", None),
    ],
)
def test_parser_refusals_are_prefixed(body: str, path: str | None) -> None:

    with pytest.raises(RpcError) as info:
        parse_vm_action(etree.fromstring(f'<vmAction xmlns="{ESC}">{body}</vmAction>'))
    assert info.value.path is not None and fully_prefixed(info.value.path)
    if path is not None:
        assert info.value.path == path


async def test_the_esc_prefix_is_declared_on_the_error_path() -> None:
    body = f'<vmAction xmlns="{ESC}"><actionType>EXPLODE</actionType><vmName>v</vmName></vmAction>'
    reply = await InprocClient(make_core()).rpc(body)
    path = reply.find(f".//{{{NC}}}error-path")
    assert path is not None and path.nsmap.get("esc") == ESC
    # The path resolves against the request it names.
    request = etree.fromstring(f"<rpc xmlns='{NC}'>{body}</rpc>")[0]
    doc = etree.ElementTree(request)
    assert len(doc.xpath(path.text or "", namespaces={"esc": ESC})) == 1
