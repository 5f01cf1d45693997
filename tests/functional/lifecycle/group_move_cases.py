"""A ten-VM group moved CSP-1 -> CSP-2 with at least nine running throughout, INSIDE a
private network namespace, with each VM's KPI deciding when the next one moves.

Not collected by a normal run (no ``test_`` prefix): test_group_move_live.py runs pytest on
this file under ``unshare --net``. Three ``esc-csp-sim`` hosts with their guest network on the
namespace's ``lo`` (a running VM's 192.168.23.x answers ping, a stopped one does not), the
real daemon with ``[monitor]`` allowing 192.168.23.0/24, ncclient over SSH. The seed's payload
with ten VMs and its KPI scaled down (a poll a second, alive at the first answered ping).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.csp_sim.guestnet import isolation_problems
from esc_orch.testing.emulator import EmulatorHost
from esc_orch.testing.netns import inside
from functional.lifecycle.support import HOSTS, Cluster, connect, edit, events_until, short
from payloads import EXAMPLES

if not inside():
    pytest.skip(
        "runs only inside the namespace made by test_group_move_live.py",
        allow_module_level=True,
    )

N = 10
DAEMON_TOML = """
[vim]
check_interval = 30
check_timeout = 2
[lifecycle]
resync_interval = 600
retry_attempts = 3
retry_base_delay = 0.2
retry_max_delay = 1
move_alive_timeout = 30
[monitor]
allowed_networks = ["192.168.23.0/24"]
vim_interval = 5
scripts_dir = "{scripts}"
"""


@pytest.fixture(scope="session", autouse=True)
def sealed_namespace() -> Iterator[None]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    problems = isolation_problems()
    if problems:
        pytest.fail(f"not a sealed namespace: {problems}")
    yield


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.hosts = {
        name: EmulatorHost(
            name=name,
            root=tmp_path / "cluster",
            extra_args=["--guest-net", "netns", "--latency-ms", "20"],
        )
        for name in HOSTS
    }
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "servicebooted.sh"  # the seed's rule action: a no-op here
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    c.config.write_text(DAEMON_TOML.format(scripts=scripts))
    try:
        c.start_hosts()
        yield c
    finally:
        c.close()


def group(example: str, n: int) -> str:
    """The seed payload with ``n`` VMs and its KPI scaled down."""
    text = (EXAMPLES / example).read_text().split("-->", 1)[1]
    ips = "".join(f"<ip_address>192.168.23.{61 + i}</ip_address>" for i in range(n))
    for old, new in (
        ("<min_active>1</min_active>", f"<min_active>{n}</min_active>"),
        ("<max_active>1</max_active>", f"<max_active>{n}</max_active>"),
        (
            "<ip_address>192.168.23.61</ip_address>\n              </static_ip_address_pool>",
            f"{ips}</static_ip_address_pool>",
        ),
        ("<vcpus>2</vcpus>", "<vcpus>1</vcpus>"),
        ("<memory_mb>4096</memory_mb>", "<memory_mb>512</memory_mb>"),
        ("<poll_frequency>15</poll_frequency>", "<poll_frequency>1</poll_frequency>"),
        ("<metric_occurrences_true>3<", "<metric_occurrences_true>1<"),
        ("<recovery_wait_time>60<", "<recovery_wait_time>1<"),
        ("<bootup_time>600<", "<bootup_time>60<"),
    ):
        text = text.replace(old, new)
    return f"<config>{text}</config>"


def test_ten_vms_move_one_at_a_time_each_alive_by_its_kpi_before_the_next_stops(
    cluster: Cluster,
) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, group("deploy_csp_1.xml", N))
        deployed = events_until(m, "SERVICE_ALIVE", timeout=90)
        assert [short(e) for e in deployed].count("VM_ALIVE") == N  # each by its KPI
        assert len(cluster.services("CSP-1")) == N
        running: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                on = sum(
                    power == "on"
                    for host in ("CSP-1", "CSP-2")
                    for power in cluster.services(host).values()
                )
                running.append(on)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        try:
            edit(m, group("deploy_csp_2.xml", N))
            moved = events_until(m, "SERVICE_UPDATED", timeout=240)
        finally:
            stop.set()
            sampler.join(timeout=10)
        took = time.monotonic() - started
        assert [short(e) for e in moved] == ["VM_UPDATED LOCATOR_UPDATED"] * N + ["SERVICE_UPDATED"]
        assert len(cluster.services("CSP-2")) == N and cluster.services("CSP-1") == {}
        assert len(running) >= 20 and min(running) >= N - 1, running
        print(
            f"\nten-VM group moved in {took:.1f} s, {min(running)}..{max(running)} VMs "
            f"running throughout ({len(running)} samples)"
        )
    assert cluster.daemon is not None
    log = cluster.daemon.log()
    waits = log.count("is alive (its KPI) on CSP-2")
    assert waits >= N - 1, waits  # every VM but the last was waited on by its KPI
