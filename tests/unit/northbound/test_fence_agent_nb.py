"""eo:fence_agent through the NETCONF layer on the real datastore: an error-path with ``eo:``
steps declares both prefixes and resolves against the request; get-config shows the node
masked and filters select it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.model.schema import EO_NS
from esc_orch.northbound.app import build_core
from esc_orch.store.datastore import SqlDatastore
from esc_orch.vocabulary import installed_vocabulary
from nbsupport.inproc import ESC, NC, InprocClient, error_tag, is_ok

SECRET = "Nb4-bmc-secret"


def _connector(fence_body: str) -> str:
    return (
        f'<esc_system_config xmlns="{ESC}"><vim_connectors><vim_connector><id>CSP-1</id>'
        f'<type>FAKE</type><fence_agent xmlns="{EO_NS}">{fence_body}</fence_agent>'
        "</vim_connector></vim_connectors></esc_system_config>"
    )


def _edit(config: str) -> str:
    return f"<edit-config><target><running/></target><config>{config}</config></edit-config>"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InprocClient]:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.set_vocabulary(installed_vocabulary())
    yield InprocClient(build_core(backend=store, esc_revision="2024-01-01"))
    store.close()


async def test_an_error_path_in_our_namespace_declares_eo_and_resolves(
    client: InprocClient,
) -> None:
    config = _connector("<type>FAKE</type><timeout>0</timeout>")
    reply = await client.rpc(_edit(config))
    assert error_tag(reply) == "invalid-value"
    path = reply.find(f".//{{{NC}}}error-path")
    assert path is not None
    assert path.text == (
        "/esc:esc_system_config/esc:vim_connectors/esc:vim_connector[esc:id='CSP-1']"
        "/eo:fence_agent/eo:timeout"
    )
    assert (path.nsmap.get("esc"), path.nsmap.get("eo")) == (ESC, EO_NS)
    request = etree.ElementTree(etree.fromstring(config))
    assert len(request.xpath(path.text, namespaces={"esc": ESC, "eo": EO_NS})) == 1


async def test_an_unknown_type_is_refused_over_netconf(client: InprocClient) -> None:
    reply = await client.rpc(_edit(_connector("<type>REDFISH</type>")))
    assert error_tag(reply) == "invalid-value"
    message = reply.findtext(f".//{{{NC}}}error-message") or ""
    assert "no fence agent of type 'REDFISH' is installed" in message
    assert "CSP_SIM_POWER" in message


async def test_get_config_masks_it_and_a_subtree_filter_selects_it(client: InprocClient) -> None:
    body = f"<type>FAKE</type><username>u</username><password>{SECRET}</password>"
    assert is_ok(await client.rpc(_edit(_connector(body))))
    whole = await client.rpc("<get-config><source><running/></source></get-config>")
    assert SECRET not in etree.tostring(whole).decode()
    flt = (
        f'<filter type="subtree"><esc_system_config xmlns="{ESC}"><vim_connectors>'
        f'<vim_connector><fence_agent xmlns="{EO_NS}"><password/></fence_agent>'
        "</vim_connector></vim_connectors></esc_system_config></filter>"
    )
    reply = await client.rpc(f"<get-config><source><running/></source>{flt}</get-config>")
    (fence,) = reply.iter(f"{{{EO_NS}}}fence_agent")
    assert [(etree.QName(c).localname, c.text) for c in fence] == [("password", "********")]
