"""kill -9 the daemon in the middle of a deploy: the restarted daemon finishes the work.

The daemon kills itself at an exact point through the store's failpoints (esc_orch/failpoints.py,
armed by ``ESC_ORCH_FAILPOINTS``): right after its first durable intent (before the VIM call),
before the first outcome (the VM exists on the host, nothing about it is durable), right after the
first durable event (VM_DEPLOYED logged, VM_ALIVE not), and after the second intent. After a
restart without failpoints, every VM exists exactly once on the hosts (their REST API), nothing
is left orphaned, and a subscriber replaying from before the deploy sees every event once.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from esc_orch import failpoints
from esc_orch.model.events import format_event_time
from functional.lifecycle.support import (
    Cluster,
    cluster,
    connect,
    delete_deployment,
    dep_state,
    edit,
    events_until,
    payload,
    short,
)

__all__ = ["cluster"]


def two_vm_payload(dep: str) -> str:
    """The seed payload as deployment ``dep`` with two VMs (two addresses in the pool)."""
    text = payload("deploy_csp_1.xml")
    text = text.replace("<name>dep</name>", f"<name>{dep}</name>")
    text = text.replace("<min_active>1</min_active>", "<min_active>2</min_active>")
    text = text.replace("<max_active>1</max_active>", "<max_active>2</max_active>")
    return text.replace(
        "<ip_address>192.168.23.61</ip_address>\n              </static_ip_address_pool>",
        "<ip_address>192.168.23.61</ip_address><ip_address>192.168.23.62</ip_address>"
        "</static_ip_address_pool>",
    )


def _deploy_and_die(cluster: Cluster, dep: str, kill_at: str) -> None:
    cluster.start_daemon(env={failpoints.ENV: kill_at})
    # The daemon may die before it replies, or while the session closes.
    with contextlib.suppress(Exception), connect(cluster) as m:
        edit(m, two_vm_payload(dep))
    assert cluster.wait_daemon_death() == -9, "the failpoint did not fire"


@pytest.mark.parametrize(
    "points",
    [
        (
            "lifecycle.after-intent=kill@1",
            "lifecycle.before-outcome=kill@1",
            "lifecycle.after-event=kill@1",
            "lifecycle.after-intent=kill@2",
        )
    ],
    ids=["four-crash-points"],
)
def test_kill_minus_nine_during_deploy_loses_nothing(
    cluster: Cluster, points: tuple[str, ...]
) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
    assert cluster.daemon is not None
    cluster.daemon.stop()
    for n, kill_at in enumerate(points):
        dep = f"crash{n}"
        since = datetime.now(UTC) - timedelta(seconds=1)
        _deploy_and_die(cluster, dep, kill_at)
        cluster.start_daemon()
        with connect(cluster) as m:
            m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
            events = events_until(m, "SERVICE_ALIVE", dep=dep)
            kinds = Counter(short(e) for e in events)
            assert kinds == {"VM_DEPLOYED": 2, "VM_ALIVE": 2, "SERVICE_ALIVE": 1}, (kill_at, events)
            assert short(events[-1]) == "SERVICE_ALIVE"
            per_vm = Counter(
                (short(e), e.vm_source.vmname) for e in events if e.vm_source is not None
            )
            assert set(per_vm.values()) == {1}, (kill_at, per_vm)
            named = {e.vm_source.vmname for e in events if e.vm_source is not None}
            on_hosts = {vm: where for vm, where in cluster.all_services().items()}
            assert on_hosts == {vm: ["CSP-1"] for vm in named}, (kill_at, on_hosts)
            assert all(p == "on" for vm, p in cluster.services("CSP-1").items() if vm in named)
            state = dep_state(m, dep=dep)
            assert state["state"] == "SERVICE_ACTIVE_STATE"
            assert set(state["vms"]) == named

            delete_deployment(m, dep=dep)
            undeployed = events_until(m, "SERVICE_UNDEPLOYED", dep=dep)
            assert Counter(short(e) for e in undeployed) == {
                "VM_UNDEPLOYED": 2,
                "SERVICE_UNDEPLOYED": 1,
            }
            assert cluster.all_services() == {}
        cluster.daemon.stop()


def test_kill_minus_nine_between_vm_and_service_event_of_a_service_action(
    cluster: Cluster,
) -> None:
    """The SERVICE_STOPPED owed by an accepted serviceAction survives a crash.

    The daemon dies right after VM_STOPPED is logged; the restarted one sends
    SERVICE_STOPPED (once) after resuming, and the VM stays off.
    """
    from functional.lifecycle.test_lifecycle_actions import service_action  # noqa: PLC0415

    cluster.start_daemon()
    since = datetime.now(UTC) - timedelta(seconds=1)
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, payload("deploy_csp_1.xml"))
        events_until(m, "SERVICE_ALIVE", dep="dep")
    assert cluster.daemon is not None
    cluster.daemon.stop()

    cluster.start_daemon(env={failpoints.ENV: "lifecycle.after-event=kill@1"})
    with contextlib.suppress(Exception), connect(cluster) as m:
        service_action(m, "STOP")
    assert cluster.wait_daemon_death() == -9, "the failpoint did not fire"

    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
        events = events_until(m, "SERVICE_STOPPED", dep="dep")
        after_deploy = [short(e) for e in events][3:]
        assert after_deploy == ["VM_STOPPED", "SERVICE_STOPPED"], events
        assert set(cluster.services("CSP-1").values()) == {"off"}
    cluster.daemon.stop()


def test_a_restart_after_finished_actions_sends_no_stray_service_event(cluster: Cluster) -> None:
    """Action runs are quiet: a clean restart afterwards must not report them again."""
    from functional.lifecycle.test_lifecycle_actions import (  # noqa: PLC0415
        service_action,
        vm_action,
    )

    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, payload("deploy_csp_1.xml"))
        deployed = events_until(m, "SERVICE_ALIVE", dep="dep")
        vm = next(e.vm_source.vmname for e in deployed if e.vm_source is not None)
        assert vm is not None
        vm_action(m, "STOP", vm)
        events_until(m, "VM_STOPPED", dep="dep")
        service_action(m, "START")
        events_until(m, "SERVICE_STARTED", dep="dep")
    assert cluster.daemon is not None
    cluster.daemon.stop()
    since = datetime.now(UTC)
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
        stray = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            notification = m.take_notification(block=True, timeout=0.5)
            if notification is not None and "<depname>dep</depname>" in (
                notification.notification_xml
            ):
                stray.append(notification.notification_xml)
        assert stray == []
    cluster.daemon.stop()
