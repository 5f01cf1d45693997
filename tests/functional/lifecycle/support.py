"""A three-host emulated CSP cluster, the real daemon, and NETCONF helpers for lifecycle tests.

Everything is a real process on 127.0.0.1: three ``esc-csp-sim host`` processes sharing one
Gluster directory (cluster ``Cluster_Test``), and ``esc-orchd serve`` on a SQLite datastore.
Every wait is bounded; every process is ended by the fixtures, also on failure.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from esc_orch.model.events import EscEvent, parse_esc_event
from esc_orch.testing.emulator import EmulatorHost
from nbsupport.orchd import OrchdProcess
from nbsupport.server import nc_connect
from payloads import ESC_NS, EXAMPLES

USER, PASSWORD = "admin", "orchd-test-password"
NS = {"e": ESC_NS}
HOSTS = ("CSP-1", "CSP-2", "CSP-3")
# Fast faults: few tries, short delays (a dead host is reported within seconds).
DAEMON_TOML = """
[vim]
check_interval = 30
check_timeout = 2
[lifecycle]
resync_interval = 600
retry_attempts = 3
retry_base_delay = 0.2
retry_max_delay = 1
[monitor]
enabled = false  # outside a private namespace: the seed's 192.168.23.x are never pinged
"""


class Cluster:
    """Three emulated hosts under one root (shared gluster) and a restartable daemon."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hosts = {name: EmulatorHost(name=name, root=root / "cluster") for name in HOSTS}
        self.config = root / "esc-orchd.toml"
        self.config.write_text(DAEMON_TOML)
        self.daemon: OrchdProcess | None = None

    def start_hosts(self) -> None:
        for host in self.hosts.values():
            host.start()

    def start_daemon(self, env: dict[str, str] | None = None) -> OrchdProcess:
        self.daemon = OrchdProcess(
            data_dir=self.root / "orchd",
            user=USER,
            password=PASSWORD,
            extra_args=("--config", str(self.config)),
            env=env,
        )
        return self.daemon.start()  # self.daemon is set also when it dies while starting

    def wait_daemon_death(self, timeout: float = 30) -> int:
        """The daemon killed itself (test hook): its exit status."""
        assert self.daemon is not None and self.daemon.proc is not None
        return self.daemon.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        for host in self.hosts.values():
            host.close()

    # ------------------------------------------------------------------ payloads

    def connectors_xml(self) -> str:
        text = (EXAMPLES / "vim_connectors.xml").read_text().split("-->", 1)[1]
        for name, host in self.hosts.items():
            port = 8440 + int(name[-1])
            text = text.replace(f"http://127.0.0.1:{port}", host.url)
        text = text.replace("change-me", self.hosts["CSP-1"].password)
        fast = (
            "<property><name>retries</name><value>2</value></property>"
            "<property><name>backoff</name><value>0.1</value></property>"
            "<property><name>timeout</name><value>5</value></property>"
        )
        return text.replace("</properties>\n      <users>", f"{fast}</properties><users>")

    # ------------------------------------------------------------------ hosts

    def services(self, name: str) -> dict[str, str]:
        """VM name -> power state, as host ``name`` reports over its REST API."""

        async def get() -> Any:
            return await self.hosts[name].request("GET", "/api/running/services")

        status, _, body = asyncio.run(get())
        assert status == 200, body
        services = (body or {}).get("services", {}).get("service", [])
        return {s["name"]: str(s.get("power", "?")) for s in services}

    def all_services(self) -> dict[str, list[str]]:
        """VM name -> hosts that report it (running hosts only)."""
        seen: dict[str, list[str]] = {}
        for name, host in self.hosts.items():
            if host.proc is None or host.proc.poll() is not None:
                continue
            for vm in self.services(name):
                seen.setdefault(vm, []).append(name)
        return seen


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_hosts()
        yield c
    finally:
        c.close()


def payload(name: str) -> str:
    return "<config>" + (EXAMPLES / name).read_text().split("-->", 1)[1] + "</config>"


def edit(manager: Any, body: str) -> None:
    manager.edit_config(target="running", config=body)


def delete_deployment(manager: Any, tenant: str = "name1", dep: str = "dep") -> None:
    edit(
        manager,
        f'<config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><esc_datamodel '
        f'xmlns="{ESC_NS}"><tenants><tenant><name>{tenant}</name><deployments>'
        f'<deployment nc:operation="delete"><name>{dep}</name></deployment>'
        "</deployments></tenant></tenants></esc_datamodel></config>",
    )


def events_until(
    manager: Any, last: str, *, dep: str | None = None, timeout: float = 30
) -> list[EscEvent]:
    """escEvents of deployments (of ``dep`` if given) up to the first of type ``last``."""
    out: list[EscEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notification = manager.take_notification(block=True, timeout=0.5)
        if notification is None:
            continue
        element = etree.fromstring(notification.notification_xml.encode())
        found = element.find(f"{{{ESC_NS}}}escEvent")
        if found is None:
            continue
        event = parse_esc_event(found)
        if event.depname is None or (dep is not None and event.depname != dep):
            continue
        out.append(event)
        if event.event.type == last:
            return out
    raise AssertionError(f"no {last} within {timeout} s; got {[short(e) for e in out]}")


def short(event: EscEvent) -> str:
    kind = str(event.event.type)
    if event.vm_update_type is not None:
        kind += f" {event.vm_update_type}"
    return kind + ("" if str(event.status) == "SUCCESS" else "/FAILURE")


def opdata(manager: Any) -> etree._Element:
    reply = manager.get(filter=("xpath", "/esc_datamodel/opdata/tenants"))
    return etree.fromstring(reply.data_xml.encode())


def dep_state(manager: Any, tenant: str = "name1", dep: str = "dep") -> dict[str, Any]:
    """state, vm states and instances (vim_id, hostname) of one deployment in opdata."""
    data = opdata(manager)
    found = data.xpath(
        f"//e:tenant[e:name='{tenant}']/e:deployments[e:deployment_name='{dep}']",
        namespaces=NS,
    )
    if not found:
        return {}
    d = found[0]
    return {
        "state": d.findtext("e:state_machine/e:state", namespaces=NS),
        "depid": d.findtext("e:deployment_id", namespaces=NS),
        "vms": {
            m.findtext("e:vm_name", namespaces=NS): m.findtext("e:state", namespaces=NS)
            for m in d.iterfind("e:state_machine/e:vm_state_machines/e:vm_state_machine", NS)
        },
        "instances": [
            (
                i.findtext("e:name", namespaces=NS),
                i.findtext("e:vim_id", namespaces=NS),
                i.findtext("e:hostname", namespaces=NS),
            )
            for i in d.iterfind("e:vm_group/e:vm_instance", NS)
        ],
    }


def connect(cluster: Cluster) -> Any:
    assert cluster.daemon is not None
    return nc_connect(cluster.daemon.port, user=USER, password=PASSWORD)


VM_NAME = re.compile(r"^dep_Group1_(\d+)_[0-9a-f-]{36}$")
