"""The live part of the README demo (``python -m esc_orch.demo``): real processes, real events.

Kept apart from :mod:`esc_orch.demo` (the configuration-only walk-through) because it starts
processes: three emulated CSP hosts, the daemon, and a NETCONF client printing escEvents as
they arrive. Every wait is bounded and every process is stopped in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch.cli import wakeup
from esc_orch.cli.main import open_manager
from esc_orch.cli.notif import format_notification
from esc_orch.model.schema import ESC_NS
from esc_orch.testing.emulator import EmulatorHost

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USER, PASSWORD = "admin", "demo-password"
ORCHD = [sys.executable, "-m", "esc_orch.daemon.cli"]
# metrics on a free port of 127.0.0.1 (the daemon logs which): shown at the end of the demo
DAEMON_TOML = "[lifecycle]\nretry_attempts = 3\nretry_base_delay = 0.5\n[metrics]\nport = 0\n"
SHOWN_METRICS = re.compile(
    r"^esc_orch_(lifecycle_runs_total|lifecycle_steps_total|events_emitted_total"
    r"|config_commits_total|vim_connector_status\{.*CONNECTION_SUCCESSFUL"
    r"|netconf_rpc_duration_seconds_count)"
)


def _show_metrics(root: Path) -> None:
    """What ``curl 127.0.0.1:PORT/metrics`` says after the demo (a selection)."""
    found = re.search(r"metrics listening \S+ port=(\d+)", (root / "esc-orchd.log").read_text())
    if found is None:
        return
    url = f"http://127.0.0.1:{found.group(1)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    print(f"\n===== Metrics: curl {url} (a selection)\n")
    for line in text.splitlines():
        if SHOWN_METRICS.match(line):
            print(f"  {line}")


def _start_daemon(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``esc-orchd serve`` on 127.0.0.1, port learnt from its READY=1 notification."""
    data = root / "orchd"
    data.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(
        [*ORCHD, "useradd", "--data-dir", str(data), USER, "--password-stdin"],
        input=f"{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=30,
    )
    config = root / "esc-orchd.toml"
    config.write_text(DAEMON_TOML)
    sock_dir = tempfile.mkdtemp(prefix="demo-")
    path = os.path.join(sock_dir, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        notify.bind(path)
        notify.settimeout(30)
        with (root / "esc-orchd.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    *ORCHD,
                    *("serve", "--data-dir", str(data), "--config", str(config)),
                    *("--bind", "127.0.0.1", "--port", "0"),
                ],
                env=dict(os.environ, NOTIFY_SOCKET=path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        ready = notify.recv(4096).decode()
    finally:
        notify.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(sock_dir)
    return proc, int(ready.rsplit(":", 1)[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _payload(name: str, hosts: dict[str, EmulatorHost]) -> str:
    text = (EXAMPLES / name).read_text().split("-->", 1)[1]
    for host_name, host in hosts.items():
        text = text.replace(f"http://127.0.0.1:{8440 + int(host_name[-1])}", host.url)
    return "<config>" + text.replace("change-me", hosts["CSP-1"].password) + "</config>"


def _until(m: Any, last: str, *, count: int = 1, timeout: float = 60) -> None:
    """Print escEvents as they arrive, up to the ``count``-th of type ``last``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notification = m.take_notification(block=True, timeout=0.5)
        if notification is None:
            continue
        root = etree.fromstring(notification.notification_xml.encode())
        print(format_notification(root) + "\n", flush=True)
        kind = root.findtext(f".//{{{ESC_NS}}}event/{{{ESC_NS}}}type")
        if kind == last:
            count -= 1
            if count == 0:
                return
    raise TimeoutError(f"no {last} within {timeout:g} s")


def _step(m: Any, title: str, config: str, last: str, *, count: int = 1) -> None:
    print(f"\n===== {title}\n", flush=True)
    m.edit_config(target="running", config=config)
    _until(m, last, count=count)


def _delete(dep: str) -> str:
    return (
        '<config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        f'<esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>name1</name><deployments>'
        f'<deployment nc:operation="delete"><name>{dep}</name></deployment></deployments>'
        "</tenant></tenants></esc_datamodel></config>"
    )


def _where(hosts: dict[str, EmulatorHost]) -> str:
    """Which VMs each host runs, read from its persisted state (the hosts' own view)."""
    parts = []
    for name, host in hosts.items():
        state = host.state_file.read_text() if host.state_file.exists() else ""
        count = state.count('"power"')
        parts.append(f"{name}: {count} VM(s)")
    return ", ".join(parts)


def run_live(root: Path) -> int:
    wakeup.install()
    hosts = {n: EmulatorHost(name=n, root=root / "cluster") for n in ("CSP-1", "CSP-2", "CSP-3")}
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        for host in hosts.values():
            host.start()
            print(f"emulated CSP host {host.name} at {host.url} (gluster: {host.gluster_dir})")
        proc, port = _start_daemon(root)
        print(f"esc-orchd on 127.0.0.1:{port}, SQLite in {root / 'orchd'}")
        with open_manager(host="127.0.0.1", port=port, user=USER, password=PASSWORD) as m:
            m.create_subscription(stream_name="escEvent")
            _step(
                m,
                "Register the VIM connectors CSP-1..3 (cluster Cluster_Test)",
                _payload("vim_connectors.xml", hosts),
                "VIM_CONNECTION_STATE",
                count=3,
            )
            _step(
                m,
                "Deploy the seed payload on CSP-1",
                _payload("deploy_csp_1.xml", hosts),
                "SERVICE_ALIVE",
            )
            print(f"  hosts: {_where(hosts)}")
            _step(
                m,
                "Scenario 1: move Group1 to CSP-2 (same VM identity, disk on Gluster)",
                _payload("deploy_csp_2.xml", hosts),
                "SERVICE_UPDATED",
            )
            print(f"  hosts: {_where(hosts)}")
            _step(m, "Undeploy", _delete("dep"), "SERVICE_UNDEPLOYED")
            _step(
                m,
                "Scenario 3, start: the VM on CSP-1 with its disk on local storage",
                _payload("deploy_csp_1_local.xml", hosts),
                "SERVICE_ALIVE",
            )
            _step(
                m,
                "Scenario 3: connector CSP-1-cluster (same host, cluster_name)",
                _payload("vim_connector_cluster.xml", hosts),
                "VIM_CONNECTION_STATE",
            )
            _step(
                m,
                "Scenario 3: locator CSP-1-cluster + disk_storage_name gluster: the disk moves",
                _payload("deploy_gluster.xml", hosts),
                "SERVICE_UPDATED",
            )
            print(f"  hosts: {_where(hosts)}")
            _step(m, "Undeploy", _delete("dep"), "SERVICE_UNDEPLOYED")
            print(f"  hosts: {_where(hosts)}")
        _show_metrics(root)
        print(f"\ndemo done in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        if proc is not None:
            _stop(proc)
        for host in hosts.values():
            host.close()
