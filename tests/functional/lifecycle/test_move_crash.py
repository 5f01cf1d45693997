"""kill -9 the daemon at every step of a move (failpoints ``move.*``): one copy, every event once.

For the shared-disk move (scenario 1, gluster) and the redeploy (a local disk moving to another
host), the daemon kills itself right after one step of the move was done on the VIM; the
restarted daemon finishes the move. Then exactly one copy of the VM runs, on CSP-2; its disk is
where it belongs (the shared volume; for a redeploy, CSP-2's local storage and nothing left on
CSP-1); a subscriber replaying from before the move sees VM_UPDATED LOCATOR_UPDATED and
SERVICE_UPDATED once each. The fenced move's step (``move.fenced``) is journaled the same way.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from esc_orch import failpoints
from esc_orch.model.events import format_event_time
from functional.lifecycle.support import (
    Cluster,
    cluster,
    connect,
    dep_state,
    edit,
    events_until,
    payload,
    short,
)
from payloads import EXAMPLES

__all__ = ["cluster"]

MODES = {
    "shared-disk": ("deploy_csp_1.xml", "deploy_csp_2.xml"),
    "redeploy": ("deploy_csp_1_local.xml", "deploy_csp_1_local.xml@CSP-2"),
}


def body(name: str) -> str:
    example, _, vim = name.partition("@")
    text = payload(example)
    return text.replace(">CSP-1<", f">{vim}<") if vim else text


@pytest.mark.parametrize(
    ("mode", "point"),
    [
        ("shared-disk", "move.source-stopped"),
        ("shared-disk", "move.source-removed"),
        ("shared-disk", "move.target-created"),
        ("redeploy", "move.source-stopped"),
        ("redeploy", "move.target-created"),
    ],
)
def test_kill_minus_nine_at_a_move_step_leaves_one_copy_and_every_event_once(
    cluster: Cluster, mode: str, point: str
) -> None:
    deploy, move = MODES[mode]
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, body(deploy))
        events_until(m, "SERVICE_ALIVE")
    (name,) = cluster.all_services()
    assert cluster.daemon is not None
    cluster.daemon.stop()

    since = datetime.now(UTC) - timedelta(seconds=1)
    cluster.start_daemon(env={failpoints.ENV: f"{point}=kill@1"})
    with contextlib.suppress(Exception), connect(cluster) as m:
        edit(m, body(move))
    assert cluster.wait_daemon_death() == -9, "the failpoint did not fire"

    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
        events = events_until(m, "SERVICE_UPDATED", timeout=60)
        kinds = [short(e) for e in events]
        if "SERVICE_ALIVE" in kinds:  # the replay window may begin with the deploy
            events = events[kinds.index("SERVICE_ALIVE") + 1 :]
        assert Counter(short(e) for e in events) == {
            "VM_UPDATED LOCATOR_UPDATED": 1,
            "SERVICE_UPDATED": 1,
        }, (point, events)
        assert cluster.all_services() == {name: ["CSP-2"]}, point
        assert cluster.services("CSP-2")[name] == "on"
        assert dep_state(m)["instances"] == [(name, "CSP-2", "CSP-2")]
        host1, host2 = cluster.hosts["CSP-1"], cluster.hosts["CSP-2"]
        if mode == "shared-disk":
            assert any(p.name.startswith(name) for p in host2.gluster_dir.iterdir())
        else:
            assert any(p.name.startswith(name) for p in host2.local_dir.iterdir())
            assert not any(p.name.startswith(name) for p in host1.local_dir.iterdir())
    cluster.daemon.stop()


def cluster_connector_xml(cluster: Cluster) -> str:
    text = (EXAMPLES / "vim_connector_cluster.xml").read_text().split("-->", 1)[1]
    text = text.replace("http://127.0.0.1:8441", cluster.hosts["CSP-1"].url)
    return "<config>" + text.replace("change-me", cluster.hosts["CSP-1"].password) + "</config>"


def test_kill_minus_nine_after_the_disk_copy_of_scenario_3(cluster: Cluster) -> None:
    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, cluster_connector_xml(cluster))
        edit(m, payload("deploy_csp_1_local.xml"))
        events_until(m, "SERVICE_ALIVE")
    (name,) = cluster.all_services()
    assert cluster.daemon is not None
    cluster.daemon.stop()

    since = datetime.now(UTC) - timedelta(seconds=1)
    cluster.start_daemon(env={failpoints.ENV: "move.disk-copied=kill@1"})
    with contextlib.suppress(Exception), connect(cluster) as m:
        edit(m, payload("deploy_gluster.xml"))
    assert cluster.wait_daemon_death() == -9, "the failpoint did not fire"

    cluster.start_daemon()
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent", start_time=format_event_time(since))
        events = events_until(m, "SERVICE_UPDATED", timeout=60)
        kinds = [short(e) for e in events]
        if "SERVICE_ALIVE" in kinds:
            events = events[kinds.index("SERVICE_ALIVE") + 1 :]
        assert Counter(short(e) for e in events) == {
            "VM_UPDATED LOCATOR_UPDATED": 1,
            "SERVICE_UPDATED": 1,
        }, events
        assert cluster.all_services() == {name: ["CSP-1"]}
        assert cluster.services("CSP-1")[name] == "on"
        host = cluster.hosts["CSP-1"]
        assert any(p.name.startswith(name) for p in host.gluster_dir.iterdir())
        assert not any(p.name.startswith(name) for p in host.local_dir.iterdir())
    cluster.daemon.stop()
