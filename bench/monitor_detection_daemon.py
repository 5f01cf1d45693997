"""Bench: fault → VM_RECOVERY_INIT through the REAL daemon, against the payload's window.

Like ``bench/monitor_detection.py`` but end to end: ``esc-orchd serve`` (monitoring wired),
three emulated CSP hosts with their guest network on ``lo``, a NETCONF client subscribed to
escEvent; the seed payload with the demo's scaled timings (polls 1 s, 2 occurrences,
recovery_wait_time 2 s: window 4 s). Faults: CSP-1 SIGKILLed, the VM stopped behind our
back (REST power off). Daemon runs with ``[monitor] vim_interval`` 1 s (the VIM's view on)
and 60 s (pings only, in practice). The delay is the INIT's ``eventTime`` minus the wall
time just before the fault. Inside a private network namespace (re-executes itself under
``unshare --net``); bounded: 4 faults, each waited on for at most 30 s.

Run: .venv/bin/python bench/monitor_detection_daemon.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from lxml import etree

import esc_orch.demo_live as demo
from esc_orch.cli.main import open_manager
from esc_orch.model.schema import ESC_NS
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.netns import netns_unavailable

INSIDE = "ESC_ORCH_BENCH_NETNS"
WINDOW = 1 * 2 + 2.0  # poll_frequency x occurrences_false + recovery_wait_time


def _wait(m: object, kind: str, timeout: float = 30) -> float:
    """The eventTime (epoch s) of the next escEvent of type ``kind``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = m.take_notification(block=True, timeout=0.5)  # type: ignore[attr-defined]
        if n is None:
            continue
        root = etree.fromstring(n.notification_xml.encode())
        if root.findtext(f".//{{{ESC_NS}}}event/{{{ESC_NS}}}type") == kind:
            stamp = root.findtext("{urn:ietf:params:xml:ns:netconf:notification:1.0}eventTime")
            return datetime.fromisoformat(str(stamp)).timestamp()
    raise TimeoutError(f"no {kind} within {timeout} s")


def _power_off(host: EmulatorHost, vm: str) -> None:
    async def patch() -> None:
        await host.request(
            "PATCH", f"/api/running/services/service/{vm}", body={"service": {"power": "off"}}
        )

    asyncio.run(patch())


def _vm_name(m: object) -> str:
    reply = m.get(filter=("xpath", "/esc_datamodel/opdata/tenants"))  # type: ignore[attr-defined]
    data = etree.fromstring(reply.data_xml.encode())
    return str(data.findtext(f".//{{{ESC_NS}}}vm_instance/{{{ESC_NS}}}name"))


def run_config(root: Path, vim_interval: int) -> dict[str, float]:
    demo.MONITOR_TOML = demo.MONITOR_TOML.replace(
        "vim_interval = 1", f"vim_interval = {vim_interval}"
    )
    hosts = {
        n: EmulatorHost(name=n, root=root / "cluster", extra_args=["--guest-net", "netns"])
        for n in ("CSP-1", "CSP-2", "CSP-3")
    }
    proc = None
    out: dict[str, float] = {}
    try:
        for host in hosts.values():
            host.start()
        proc, port = demo._start_daemon(root)
        with open_manager(host="127.0.0.1", port=port, user=demo.USER, password=demo.PASSWORD) as m:
            m.create_subscription(stream_name="escEvent")
            m.edit_config(target="running", config=demo._payload("vim_connectors.xml", hosts))
            for fault in ("vm-stopped", "host-killed"):
                m.edit_config(target="running", config=demo._payload("deploy_csp_1.xml", hosts))
                _wait(m, "SERVICE_ALIVE")
                vm = _vm_name(m)
                before = time.time()
                if fault == "host-killed":
                    hosts["CSP-1"].kill()
                else:
                    _power_off(hosts["CSP-1"], vm)
                out[fault] = _wait(m, "VM_RECOVERY_INIT") - before
                _wait(m, "VM_RECOVERY_COMPLETE")
                if fault == "host-killed":
                    hosts["CSP-1"].start()
                m.edit_config(target="running", config=demo._delete("dep"))
                _wait(m, "SERVICE_UNDEPLOYED")
        return out
    finally:
        if proc is not None:
            demo._stop(proc)
        for host in hosts.values():
            host.close()


def main() -> int:
    if os.environ.get(INSIDE) != "1":
        problem = netns_unavailable()
        if problem is not None:
            print(f"skipped: {problem}")
            return 0
        env = dict(os.environ, **{INSIDE: "1", demo.INSIDE: "1"})
        return subprocess.run(
            ["unshare", "--net", sys.executable, __file__], env=env, check=False, timeout=300
        ).returncode
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    print(f"window = poll 1 s x 2 occurrences + recovery_wait_time 2 s = {WINDOW:g} s")
    for vim_interval in (1, 60):
        with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
            figures = run_config(Path(tmp), vim_interval)
        for fault, delay in figures.items():
            print(f"vim_interval {vim_interval:>2} s  {fault:<11}  fault -> INIT {delay:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
