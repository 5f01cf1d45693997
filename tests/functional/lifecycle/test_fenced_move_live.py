"""Scenario 2 with a fence agent: a move away from a partitioned host fences it first.

``esc-csp-sim cluster`` runs the hosts with their per-host power controllers; the VIM
connector of CSP-1 names its controller in our augment ``eo:fence_agent`` (type, url, host,
username, a secret password, timeout). CSP-1 is partitioned (SIGSTOP: VM running, disk
locked, API silent); the locator change to CSP-2 powers CSP-1 off through the agent (a
journaled step), and only then starts the VM on CSP-2 — one copy throughout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from esc_orch import failpoints
from esc_orch.model.events import format_event_time
from esc_orch.model.schema import EO_NS
from esc_orch.testing.emulator import EmulatorCluster
from functional.lifecycle.support import (
    PASSWORD,
    USER,
    edit,
    events_until,
    payload,
    short,
)
from nbsupport.orchd import OrchdProcess
from nbsupport.server import nc_connect
from payloads import ESC_NS

TOML = """
[vim]
check_interval = 2
check_timeout = 1
[lifecycle]
resync_interval = 600
retry_attempts = 3
retry_base_delay = 0.2
retry_max_delay = 1
observe_timeout = 3
proof_timeout = 60
[monitor]
enabled = false  # outside a private namespace: the seed's 192.168.23.x are never pinged
"""


def connectors_xml(cluster: EmulatorCluster, *, fenced: str) -> str:
    entries = []
    for name, host in sorted(cluster.hosts.items()):
        props = [("url", host.url), ("cluster_name", "Cluster_Test"), ("retries", "2"),
                 ("backoff", "0.1"), ("timeout", "5")]  # fmt: skip
        users = [(host.user, host.password)]
        fence = cluster.fence_agent_xml(name) if name == fenced else ""
        prop_xml = "".join(
            f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props
        )
        user_xml = "".join(
            f"<user><id>{u}</id><credentials><properties><property><name>password</name>"
            f"<value>{p}</value></property></properties></credentials></user>"
            for u, p in users
        )
        entries.append(
            f"<vim_connector><id>{name}</id><type>CSP</type><properties>{prop_xml}"
            f"</properties><users>{user_xml}</users>{fence}</vim_connector>"
        )
    return (
        f'<config><esc_system_config xmlns="{ESC_NS}"><vim_connectors>{"".join(entries)}'
        "</vim_connectors></esc_system_config></config>"
    )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorCluster]:
    with EmulatorCluster(tmp_path / "cluster", hosts=2) as cluster:
        yield cluster


def services(cluster: EmulatorCluster, name: str) -> dict[str, str]:
    host = cluster.hosts[name]

    async def get() -> Any:
        import aiohttp  # noqa: PLC0415 - test helper

        token = base64.b64encode(f"{host.user}:{host.password}".encode()).decode()
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session,
            session.get(
                f"{host.url}/api/running/services", timeout=aiohttp.ClientTimeout(5)
            ) as reply,
        ):
            return await reply.json(content_type=None)

    body = asyncio.run(get())
    found = (body or {}).get("services", {}).get("service", [])
    return {s["name"]: str(s.get("power", "?")) for s in found}


def test_a_move_away_from_a_partitioned_host_fences_it_first(
    emulator: EmulatorCluster, tmp_path: Path
) -> None:
    config = tmp_path / "esc-orchd.toml"
    config.write_text(TOML)
    daemon = OrchdProcess(
        data_dir=tmp_path / "orchd",
        user=USER,
        password=PASSWORD,
        extra_args=("--config", str(config)),
    ).start()
    try:
        with nc_connect(daemon.port, user=USER, password=PASSWORD) as m:
            m.create_subscription(stream_name="escEvent")
            edit(m, connectors_xml(emulator, fenced="CSP-1"))
            edit(m, payload("deploy_csp_1.xml"))
            deployed = events_until(m, "SERVICE_ALIVE", timeout=60)
            assert [short(e) for e in deployed] == ["VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"]
            (name,) = services(emulator, "CSP-1")
            emulator.pause("CSP-1")  # partitioned: VM running, disk locked, API silent
            edit(m, payload("deploy_csp_2.xml"))
            moved = events_until(m, "SERVICE_UPDATED", timeout=90)
            assert [short(e) for e in moved] == ["VM_UPDATED LOCATOR_UPDATED", "SERVICE_UPDATED"]
            assert moved[0].status_message == "VIM Locator Updated Successfully"
            assert emulator.pid("CSP-1") is None  # powered off by its fence agent
            assert services(emulator, "CSP-2") == {name: "on"}
            # The password of the controller is a secret like the VIM's: masked in get-config.
            shown = m.get_config(source="running", filter=("xpath", "/esc_system_config"))
            assert emulator.hosts["CSP-1"].power_password not in shown.data_xml
            fence = shown.data_ele.find(f".//{{{ESC_NS}}}vim_connector/{{{EO_NS}}}fence_agent")
            assert fence is not None
            assert fence.findtext(f"{{{EO_NS}}}password") == "********"
            assert fence.findtext(f"{{{EO_NS}}}url") == emulator.hosts["CSP-1"].power_url
        log = daemon.log()
        assert "fenced" in log and "CSP-1" in log
        assert emulator.hosts["CSP-1"].power_password not in log
    finally:
        daemon.stop()


def test_kill_minus_nine_right_after_the_fence_finishes_the_move_once(
    emulator: EmulatorCluster, tmp_path: Path
) -> None:
    config = tmp_path / "esc-orchd.toml"
    config.write_text(TOML)

    def daemon(env: dict[str, str] | None = None) -> OrchdProcess:
        return OrchdProcess(
            data_dir=tmp_path / "orchd",
            user=USER,
            password=PASSWORD,
            extra_args=("--config", str(config)),
            env=env,
        ).start()

    first = daemon()
    try:
        with nc_connect(first.port, user=USER, password=PASSWORD) as m:
            m.create_subscription(stream_name="escEvent")
            edit(m, connectors_xml(emulator, fenced="CSP-1"))
            edit(m, payload("deploy_csp_1.xml"))
            events_until(m, "SERVICE_ALIVE", timeout=60)
    finally:
        first.stop()
    (name,) = services(emulator, "CSP-1")
    since = datetime.now(UTC) - timedelta(seconds=1)
    dying = daemon(env={failpoints.ENV: "move.fenced=kill@1"})
    try:
        with (
            contextlib.suppress(Exception),
            nc_connect(dying.port, user=USER, password=PASSWORD) as m,
        ):
            time.sleep(1)  # its start-up resync is done
            emulator.pause("CSP-1")
            edit(m, payload("deploy_csp_2.xml"))
        assert dying.proc is not None and dying.proc.wait(timeout=60) == -9
    finally:
        dying.stop()
    assert emulator.pid("CSP-1") is None  # the fence was done before the kill
    again = daemon()
    try:
        with nc_connect(again.port, user=USER, password=PASSWORD) as m:
            m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
            events = events_until(m, "SERVICE_UPDATED", timeout=90)
            kinds = [short(e) for e in events]
            if "SERVICE_ALIVE" in kinds:
                events = events[kinds.index("SERVICE_ALIVE") + 1 :]
            assert [short(e) for e in events] == ["VM_UPDATED LOCATOR_UPDATED", "SERVICE_UPDATED"]
            assert services(emulator, "CSP-2") == {name: "on"}
    finally:
        again.stop()
