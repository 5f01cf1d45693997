"""VIM connectors are checked for real: the daemon against emulated CSP hosts, over SSH.

A connector created by edit-config is described over HTTP; the result is a
VIM_CONNECTION_STATE escEvent and ``opdata/vim_connectors`` state; a host that dies is
noticed by the periodic check; a deployment placed on it is then refused at acceptance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from esc_orch.model.events import parse_esc_event
from esc_orch.testing.emulator import EmulatorHost
from nbsupport.orchd import OrchdProcess
from nbsupport.server import nc_connect
from payloads import ESC_NS, EXAMPLES

USER, PASSWORD = "admin", "orchd-test-password"
NS = {"e": ESC_NS}


def _connector(host: EmulatorHost, *, connector_id: str, password: str) -> str:
    return (
        f"<vim_connector><id>{connector_id}</id><type>CSP</type><properties>"
        f"<property><name>url</name><value>{host.url}</value></property></properties>"
        f"<users><user><id>{host.user}</id><credentials><properties><property>"
        f"<name>password</name><value>{password}</value></property></properties>"
        "</credentials></user></users></vim_connector>"
    )


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[EmulatorHost, EmulatorHost]]:
    one = EmulatorHost(name="CSP-1", root=tmp_path / "cluster")
    two = EmulatorHost(name="CSP-2", root=tmp_path / "cluster")
    try:
        one.start()
        two.start()
        yield one, two
    finally:
        one.close()
        two.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[OrchdProcess]:
    config = tmp_path / "esc-orchd.toml"
    # monitoring off: the seed payload names 192.168.23.61, never pinged outside a namespace
    config.write_text("[vim]\ncheck_interval = 1\ncheck_timeout = 2\n[monitor]\nenabled = false\n")
    with OrchdProcess(
        data_dir=tmp_path / "orchd",
        user=USER,
        password=PASSWORD,
        extra_args=("--config", str(config)),
    ) as process:
        yield process


def _connection_events(manager: Any, wanted: int, timeout: float = 15) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(seen) < wanted and time.monotonic() < deadline:
        notification = manager.take_notification(block=True, timeout=1)
        if notification is None:
            continue
        element = etree.fromstring(notification.notification_xml.encode())
        event = parse_esc_event(element.find(f"{{{ESC_NS}}}escEvent"))
        if event.event.type == "VIM_CONNECTION_STATE":
            seen.append((str(event.event.details), str(event.status)))
    return seen


def _states(manager: Any) -> dict[str, str]:
    reply = manager.get(filter=("xpath", "/esc_datamodel/opdata/vim_connectors"))
    data = etree.fromstring(reply.data_xml.encode())
    return {
        entry.findtext("e:id", namespaces=NS): entry.findtext("e:status", namespaces=NS)
        for entry in data.iterfind(".//e:vim_connector", NS)
    }


def test_connectors_are_checked_reported_and_guard_acceptance(
    hosts: tuple[EmulatorHost, EmulatorHost], daemon: OrchdProcess
) -> None:
    csp1, csp2 = hosts
    with nc_connect(daemon.port, user=USER, password=PASSWORD) as manager:
        manager.create_subscription(stream_name="escEvent")
        connectors = _connector(csp1, connector_id="CSP-1", password=csp1.password) + (
            _connector(csp2, connector_id="CSP-2", password="not-the-password")
        )
        manager.edit_config(
            target="running",
            config=f'<config><esc_system_config xmlns="{ESC_NS}"><vim_connectors>'
            f"{connectors}</vim_connectors></esc_system_config></config>",
        )
        assert sorted(_connection_events(manager, 2)) == [
            ("CSP-1", "SUCCESS"),
            ("CSP-2", "FAILURE"),
        ]
        assert _states(manager) == {
            "CSP-1": "CONNECTION_SUCCESSFUL",
            "CSP-2": "CONNECTION_FAILED",
        }

        csp1.kill()  # the host powers off: the periodic check notices
        assert _connection_events(manager, 1) == [("CSP-1", "FAILURE")]

        payload = (EXAMPLES / "deploy_csp_1.xml").read_text().split("-->", 1)[1]
        with pytest.raises(RPCError) as info:
            manager.edit_config(target="running", config=f"<config>{payload}</config>")
        assert info.value.tag == "operation-failed"
        assert "CSP-1" in str(info.value.message)
