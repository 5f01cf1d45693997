"""The live part of the README demo (``python -m esc_orch.demo``): real processes, real events.

Kept apart from :mod:`esc_orch.demo` (the configuration-only walk-through) because it starts
processes: three emulated CSP hosts, the daemon, and a NETCONF client printing escEvents as
they arrive. Every wait is bounded and every process is stopped in ``finally``.

Scenario 2 pings the seed's VM address (192.168.23.61), which may happen only inside a private
network namespace: the demo re-executes itself under ``unshare --net`` (as root) or
``unshare --net --map-root-user``, where the hosts' guest network puts running VMs' addresses
on ``lo`` and ``[monitor] allowed_networks`` lets the daemon probe them. Where no namespace
can be made, scenario 2 is skipped (said why) and the daemon monitors nothing. The payloads'
monitoring timings are the seed's scaled down (polls 1 s instead of 15, 2 occurrences instead
of 3, recovery_wait_time 2 s, bootup_time 5 s) so the demo runs in well under a minute more.
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
from esc_orch.model.schema import EO_NS, ESC_NS
from esc_orch.testing.emulator import EmulatorHost

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USER, PASSWORD = "admin", "demo-password"
ORCHD = [sys.executable, "-m", "esc_orch.daemon.cli"]
# metrics on a free port of 127.0.0.1 (the daemon logs which): shown at the end of the demo
DAEMON_TOML = "[lifecycle]\nretry_attempts = 3\nretry_base_delay = 0.5\n[metrics]\nport = 0\n"
MONITOR_TOML = (
    '[monitor]\nallowed_networks = ["192.168.23.0/24"]\nvim_interval = 1\n'
    'scripts_dir = "{scripts}"\n'
)
QUIET_TOML = "[monitor]\nenabled = false\n"
INSIDE = "ESC_ORCH_DEMO_NETNS"
SCALED = (
    ("<poll_frequency>15</poll_frequency>", "<poll_frequency>1</poll_frequency>"),
    ("<metric_occurrences_true>3<", "<metric_occurrences_true>2<"),
    ("<metric_occurrences_false>3<", "<metric_occurrences_false>2<"),
    ("<recovery_wait_time>60<", "<recovery_wait_time>2<"),
    ("<bootup_time>600<", "<bootup_time>5<"),
)
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
    if os.environ.get(INSIDE) == "1":
        scripts = root / "scripts"
        scripts.mkdir(exist_ok=True)
        script = scripts / "servicebooted.sh"  # the seed's rule "TRUE servicebooted.sh"
        script.write_text('#!/bin/sh\necho "servicebooted.sh: $ESC_VM_NAME is up"\n')
        script.chmod(0o755)
        config.write_text(DAEMON_TOML + MONITOR_TOML.format(scripts=scripts))
    else:
        config.write_text(DAEMON_TOML + QUIET_TOML)
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
    for old, new in SCALED:
        text = text.replace(old, new)
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
        if kind is None:  # one of our own notifications: eo:<its name>
            ours = [c for c in root if etree.QName(c).namespace == EO_NS]
            kind = f"eo:{etree.QName(ours[0]).localname}" if ours else None
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


def _namespace_command(root: Path) -> list[str] | None:
    """How to re-run this demo in a private network namespace (``None``: not possible)."""
    base = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    probe = subprocess.run([*base, "true"], capture_output=True, timeout=10, check=False)
    if probe.returncode != 0:
        print(f"no private network namespace ({probe.stderr.decode().strip()}): "
              "scenario 2 (it pings 192.168.23.61) is skipped")  # fmt: skip
        return None
    return [*base, sys.executable, "-m", "esc_orch.demo_live", str(root)]


def run_live(root: Path) -> int:
    """The demo; re-executed inside a private network namespace when one can be made."""
    if os.environ.get(INSIDE) != "1":
        command = _namespace_command(root)
        if command is not None:
            return subprocess.run(command, env=dict(os.environ, **{INSIDE: "1"}), check=False,
                                  timeout=600).returncode  # fmt: skip
        return _run(root, monitored=False)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    return _run(root, monitored=True)


def _scenario_2(m: Any, hosts: dict[str, EmulatorHost]) -> None:
    """Seed scenario 2: CSP-1 dies under the VM; recovery fails visibly; the VM moves."""
    _step(
        m,
        "Scenario 2, start: the seed payload on CSP-1, monitored by ICMPPing (VM_ALIVE: its KPI)",
        _payload("deploy_csp_1.xml", hosts),
        "SERVICE_ALIVE",
    )
    print("\n===== Scenario 2: CSP-1 is killed (SIGKILL) under the VM\n", flush=True)
    hosts["CSP-1"].kill()
    _until(m, "VM_RECOVERY_COMPLETE")
    _step(
        m,
        "Scenario 2: the locator moves Group1 to CSP-2 (the dead host's disk lock is gone)",
        _payload("deploy_csp_2.xml", hosts),
        "SERVICE_UPDATED",
    )
    print(f"  hosts: {_where(hosts)}")
    print("\n===== Scenario 2: CSP-1 powered on again, with the old copy it had when it died\n")
    hosts["CSP-1"].start()
    _until(m, "eo:stale-copy-removed")  # its return noticed, the old copy removed at once
    print(f"  hosts: {_where(hosts)}")
    _step(m, "Undeploy", _delete("dep"), "SERVICE_UNDEPLOYED")
    print(f"  hosts: {_where(hosts)}")


def _run(root: Path, *, monitored: bool) -> int:
    wakeup.install()
    extra = ["--guest-net", "netns"] if monitored else []
    hosts = {
        n: EmulatorHost(name=n, root=root / "cluster", extra_args=extra)
        for n in ("CSP-1", "CSP-2", "CSP-3")
    }
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
            if monitored:
                _scenario_2(m, hosts)
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


if __name__ == "__main__":
    raise SystemExit(run_live(Path(sys.argv[1])))
