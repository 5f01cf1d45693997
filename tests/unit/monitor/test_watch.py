"""From the seed's vm_group to a watch, and the edit-time checks of its monitoring."""

from __future__ import annotations

from esc_orch.model.config import Interface, Interfaces, VmGroup
from esc_orch.monitor.collectors.registry import known_collector_types
from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import MetricCond, MetricKind, RuleActionKind
from esc_orch.monitor.watch import check_group, watch_for
from unit.reconcile.builders import seed_deployment


def seed_group() -> VmGroup:
    return seed_deployment().vm_group[0]


def test_the_seed_group_becomes_a_watch() -> None:
    group = seed_group()
    w = watch_for(
        vm_name="dep_Group1_0_x", tenant="demo", deployment="dep", group=group,
        connector_id="CSP-1", since=100, kinds={"ICMPPing": MetricKind.THRESHOLD},
    )  # fmt: skip
    (kpi,) = w.kpis
    assert (kpi.event_name, kpi.collector_type, kpi.metric_cond, kpi.metric_value) == (
        "VM_ALIVE", "ICMPPing", MetricCond.GT, 50,
    )  # fmt: skip
    assert (kpi.occurrences_true, kpi.occurrences_false, kpi.poll_seconds) == (3, 3, 15)
    assert kpi.address == group.interfaces.interface[0].ip_address
    assert (w.bootup_time, w.recovery_wait_time, w.since, w.monitored) == (600, 60, 100, True)
    assert [a.kind for a in w.rules["VM_ALIVE"]] == [
        RuleActionKind.LOG, RuleActionKind.RECOVER, RuleActionKind.SCRIPT,
    ]  # fmt: skip


def test_observed_addresses_override_the_payload() -> None:
    w = watch_for(
        vm_name="v", tenant="t", deployment="d", group=seed_group(), connector_id="C",
        since=0, kinds={}, addresses={0: "127.0.0.7"},
    )  # fmt: skip
    assert w.kpis[0].address == "127.0.0.7"


def test_the_seed_group_passes_with_its_networks_allowed() -> None:
    problems = check_group(
        seed_group(), known_types=known_collector_types(),
        known_scripts=frozenset({"servicebooted.sh"}),
        allowed=AllowedNetworks.parse(["192.168.0.0/16"]),
    )  # fmt: skip
    assert problems == []


def test_edit_time_refusals() -> None:
    group = seed_group()
    kpi = group.kpi_data.kpi[0]
    bad_kpi = kpi.model_copy(
        update={
            "metric_cond": "NE",
            "metric_collector": kpi.metric_collector.model_copy(update={"type": "SNMP_GET"}),
        }
    )
    bad = group.model_copy(
        update={"kpi_data": group.kpi_data.model_copy(update={"kpi": (bad_kpi,)})}
    )
    problems = check_group(
        bad, known_types=known_collector_types(), known_scripts=frozenset(),
        allowed=AllowedNetworks.default(),
    )  # fmt: skip
    messages = {p.path: p.message for p in problems}
    base = "kpi_data/kpi[event_name='VM_ALIVE']"
    assert messages[f"{base}/metric_collector/type"] == (
        "unknown metric_collector type 'SNMP_GET' (known types: ICMPPing)"
    )
    assert "NE" in messages[f"{base}/metric_cond"]
    assert (
        "refused: outside [monitor] allowed_networks (127.0.0.0/8)"
        in messages[f"{base}/metric_collector/nicid"]
    )
    assert (
        "no script 'servicebooted.sh'"
        in messages["rules/admin_rules/rule[event_name='VM_ALIVE']/action"]
    )


def test_pool_addresses_are_checked_when_the_interface_has_none() -> None:
    group = seed_group()
    nics = tuple(i.model_copy(update={"ip_address": None}) for i in group.interfaces.interface)
    bare = group.model_copy(update={"interfaces": Interfaces(interface=nics)})
    problems = check_group(
        bare, known_types=frozenset({"ICMPPing"}), allowed=AllowedNetworks.default()
    )
    pools = [p for pool in group.scaling.static_ip_address_pool for p in pool.ip_address]
    assert pools and any("refused" in p.message for p in problems)
    assert isinstance(nics[0], Interface)


def test_a_stored_group_with_bad_monitoring_is_watched_without_it() -> None:
    group = seed_group()
    kpi = group.kpi_data.kpi[0]
    bad = group.model_copy(
        update={
            "kpi_data": group.kpi_data.model_copy(
                update={"kpi": (kpi.model_copy(update={"metric_cond": "NE"}),)}
            ),
            "rules": group.rules.model_copy(
                update={
                    "admin_rules": group.rules.admin_rules.model_copy(
                        update={
                            "rule": (
                                group.rules.admin_rules.rule[0].model_copy(
                                    update={"action": ("ALWAYS log", "SOMETIMES log")}
                                ),
                            )
                        }
                    )
                }
            ),
        }
    )
    w = watch_for(vm_name="v", tenant="t", deployment="d", group=bad, connector_id="C",
                  since=0, kinds={})  # fmt: skip
    assert w.kpis == () and not w.monitored
    assert [a.text for a in w.rules["VM_ALIVE"]] == ["ALWAYS log"]
