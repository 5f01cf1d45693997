"""One heavy request does not stop the other sessions (issue 14, defect 3).

Filtering, parsing and reply rendering used to run on the event loop: an XPath filter that
took seconds froze every session and even the SSH banner for new clients. They run in worker
threads now; the heavy session still gets its answer, after the light one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from nbsupport.memory_backend import MemoryBackend
from nbsupport.rawclient import NC, EomClient
from nbsupport.server import ServerThread, prepare_data_dir

pytestmark = pytest.mark.functional

ESC = "http://www.cisco.com/esc/esc"
TENANTS = 12_000
# Quadratic in the data (count(//*) for every name): seconds of libxml2 work, empty result.
HEAVY = (
    f'<rpc xmlns="{NC}" message-id="heavy"><get><filter type="xpath" '
    'select="//name[count(//*) &lt; 0]"/></get></rpc>'
).encode()
LIGHT = (
    f'<rpc xmlns="{NC}" message-id="light"><get><filter type="subtree">'
    f'<esc_datamodel xmlns="{ESC}"><opdata/></esc_datamodel></filter></get></rpc>'
).encode()


def _many_tenants() -> MemoryBackend:
    backend = MemoryBackend()
    top = etree.SubElement(backend.running, f"{{{ESC}}}esc_datamodel", nsmap={None: ESC})
    tenants = etree.SubElement(top, f"{{{ESC}}}tenants")
    for i in range(TENANTS):
        tenant = etree.SubElement(tenants, f"{{{ESC}}}tenant")
        etree.SubElement(tenant, f"{{{ESC}}}name").text = f"t{i}"
    return backend


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(data_dir=prepare_data_dir(tmp_path), backend=_many_tenants()).start()
    try:
        yield srv
    finally:
        srv.stop()


async def test_a_heavy_filter_does_not_delay_another_sessions_get(server: ServerThread) -> None:
    heavy, light = await EomClient.open(server.port), await EomClient.open(server.port)
    try:
        order: list[str] = []

        async def answer(client: EomClient, name: str) -> etree._Element:
            reply = await client.reply(wait=120)
            order.append(name)
            return reply

        heavy.send(HEAVY)
        heavy_reply = asyncio.ensure_future(answer(heavy, "heavy"))
        await asyncio.sleep(0.3)  # the heavy filter is running now
        light.send(LIGHT)
        light_reply = await answer(light, "light")
        assert light_reply.get("message-id") == "light"
        assert light_reply.find(f"{{{NC}}}data") is not None
        # A new client still gets its SSH banner and logs in while the filter runs.
        third = await EomClient.open(server.port)
        third.close()
        order.append("login")
        assert (await heavy_reply).get("message-id") == "heavy"
        assert order == ["light", "login", "heavy"], order
    finally:
        heavy.close()
        light.close()
