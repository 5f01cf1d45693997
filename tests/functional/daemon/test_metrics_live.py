"""The Prometheus endpoint, scraped over HTTP after the demo's operations on a real cluster.

Three emulated CSP hosts, the real daemon with ``[metrics] port = 0`` (it logs the port it
got), ncclient: register the connectors, deploy, move (scenario 1), undeploy, one refused
edit; then ``GET /metrics`` and check each family reports what happened.
"""

from __future__ import annotations

import re
import time
import urllib.request

from ncclient.operations.rpc import RPCError
from prometheus_client.parser import text_string_to_metric_families

from functional.lifecycle.support import (
    DAEMON_TOML,
    Cluster,
    cluster,
    connect,
    delete_deployment,
    edit,
    events_until,
    payload,
)

__all__ = ["cluster"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_port(cluster: Cluster) -> int:
    assert cluster.daemon is not None
    found = re.search(r"metrics listening address=(\S+) port=(\d+)", cluster.daemon.log())
    assert found is not None, cluster.daemon.log()
    assert found.group(1) == "127.0.0.1"  # the default bind
    return int(found.group(2))


def test_metrics_after_deploy_move_undeploy(cluster: Cluster) -> None:
    cluster.config.write_text(DAEMON_TOML + "[metrics]\nport = 0\n")
    cluster.start_daemon()
    port = metrics_port(cluster)
    with connect(cluster) as m:
        m.create_subscription(stream_name="escEvent")
        edit(m, f"<config>{cluster.connectors_xml()}</config>")
        edit(m, payload("deploy_csp_1.xml"))
        events_until(m, "SERVICE_ALIVE")
        edit(m, payload("deploy_csp_2.xml"))
        events_until(m, "SERVICE_UPDATED")
        delete_deployment(m)
        events_until(m, "SERVICE_UNDEPLOYED")
        try:
            edit(m, payload("deploy_csp_1.xml").replace("CSP-1", "NO-SUCH-VIM"))
        except RPCError:
            pass
        else:
            raise AssertionError("an unknown VIM connector was accepted")

        deadline = time.monotonic() + 10
        while True:  # the connector checks run in the background
            text, samples = scrape(port)
            up = value(
                samples,
                "esc_orch_vim_connector_status",
                connector="CSP-2",
                status="CONNECTION_SUCCESSFUL",
            )
            if up == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        assert value(samples, "esc_orch_netconf_sessions") >= 1
        assert value(samples, "esc_orch_netconf_sessions_started_total") >= 1
        edits_ok = value(
            samples,
            "esc_orch_netconf_rpc_duration_seconds_count",
            operation="edit-config",
            result="ok",
        )
        assert edits_ok >= 4
        assert (
            value(
                samples,
                "esc_orch_netconf_rpc_duration_seconds_count",
                operation="edit-config",
                result="error",
            )
            == 1
        )
        assert value(samples, "esc_orch_config_commits_total") >= 4
        for event_type in ("VM_DEPLOYED", "SERVICE_ALIVE", "SERVICE_UPDATED", "VM_UNDEPLOYED"):
            assert value(samples, "esc_orch_events_emitted_total", event_type=event_type) == 1
        assert value(samples, "esc_orch_notification_subscriptions") == 1
        assert any(k[0] == "esc_orch_notification_queue_depth" for k in samples)
        for operation in ("deploy", "update", "undeploy"):
            runs = value(
                samples, "esc_orch_lifecycle_runs_total", operation=operation, outcome="success"
            )
            assert runs == 1, operation
        assert value(samples, "esc_orch_lifecycle_steps_total", action="CreateVm", outcome="done")
        assert value(samples, "esc_orch_lifecycle_steps_total", action="DeleteVm", outcome="done")
        assert value(
            samples,
            "esc_orch_vim_call_duration_seconds_count",
            connector="CSP-1",
            call="ensure_vm",
        )
        assert value(
            samples, "esc_orch_vim_call_duration_seconds_count", connector="CSP-2", call="describe"
        )
        assert up == 1
        assert (
            value(
                samples,
                "esc_orch_vim_connector_status",
                connector="CSP-2",
                status="CONNECTION_FAILED",
            )
            == 0
        )
        assert "esc_orch_build_info{" in text
        assert "process_cpu_seconds_total" in text
        assert "# HELP esc_orch_vim_call_errors_total" in text
