"""Runs INSIDE a private network namespace made by the test (``unshare --net``).

It refuses to do anything unless the namespace is sealed, then starts an emulated host with
``--guest-net netns`` and checks a VM's address answers ICMP only while the VM runs and until
its host dies. Prints one JSON line of observations.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from esc_orch.csp_sim.cluster import wait_ready
from esc_orch.csp_sim.guestnet import isolation_problems

ADDR = "192.168.23.10"


def ping(addr: str) -> bool:
    """One ICMP echo over a raw socket; True on a reply within 0.5 s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(0.5)
    header = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1)
    payload = b"esc-orch"
    data = header + payload
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    checksum = ~(total + (total >> 16)) & 0xFFFF
    packet = struct.pack("!BBHHH", 8, 0, checksum, 0x1234, 1) + payload
    try:
        sock.sendto(packet, (addr, 0))
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            reply, src = sock.recvfrom(1024)
            if src[0] == addr and reply[20] == 0:  # echo reply after the IP header
                return True
    except OSError:
        return False
    finally:
        sock.close()
    return False


def on_lo(addr: str) -> bool:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", "lo"], capture_output=True,
                         text=True, check=True, timeout=10).stdout  # fmt: skip
    return any(a.get("local") == addr for i in json.loads(out) for a in i.get("addr_info", []))


def call(url: str, method: str, path: str, body: object | None = None) -> int:
    token = base64.b64encode(b"admin:inner-secret").decode()
    req = urllib.request.Request(
        url + path, method=method, headers={"Authorization": f"Basic {token}"}
    )
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/vnd.yang.data+json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return int(resp.status)


def main(root: Path) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        print(json.dumps({"refused": problems}))
        return 3
    (root / "pw").write_text("inner-secret\n")
    cmd = [sys.executable, "-m", "esc_orch.csp_sim", "host", "--name", "CSP-N", "--port", "0",
           "--state-dir", str(root / "s"), "--local-dir", str(root / "l"),
           "--password-file", str(root / "pw"), "--guest-net", "netns"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    seen: dict[str, object] = {}
    try:
        url = wait_ready(proc)
        seen["before"] = on_lo(ADDR)
        vnic = {"nic": 0, "network_name": "Eth0-2", "ip_address": ADDR}
        svc = {"name": "vm1", "numcpu": 1, "memory": 256, "disk_size": 1,
               "iso_name": "i.qcow2", "vnics": {"vnic": [vnic]}}  # fmt: skip
        call(url, "POST", "/api/running/services", {"service": svc})
        seen["running"] = [on_lo(ADDR), ping(ADDR)]
        call(url, "PATCH", "/api/running/services/service/vm1", {"service": {"power": "off"}})
        seen["stopped"] = [on_lo(ADDR), ping(ADDR)]
        call(url, "PATCH", "/api/running/services/service/vm1", {"service": {"power": "on"}})
        seen["on_again"] = on_lo(ADDR)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while on_lo(ADDR) and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["after_host_died"] = [on_lo(ADDR), ping(ADDR)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    raise SystemExit(main(Path(sys.argv[1])))
