"""From a payload's ``vm_group`` to what the monitor watches, and what an edit must refuse.

:func:`watch_for` builds one VM's :class:`~esc_orch.monitor.types.VmWatch` (the lead calls it
from the deployment record: the group as applied, the VM's addresses, its boot time).
:func:`check_group` is the edit-time half, a plain function for the validator: a collector
type the daemon does not know (with the list of known ones), a metric condition or rule
action that cannot mean anything, a rule script not in the scripts directory, a probe target
outside ``[monitor] allowed_networks``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from esc_orch.model.config import Kpi, VmGroup
from esc_orch.monitor.collectors.registry import check_collector_type
from esc_orch.monitor.definitions import MetricDefinition
from esc_orch.monitor.rules import RuleSyntaxError, check_actions, parse_action
from esc_orch.monitor.targets import AllowedNetworks
from esc_orch.monitor.types import KpiSpec, MetricCond, MetricKind, RuleAction, VmWatch

log = logging.getLogger(__name__)
_UNITS = {"seconds": 1.0, "minutes": 60.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringProblem:
    """Why a vm_group's monitoring cannot be accepted; ``path`` is relative to the vm_group."""

    path: str
    message: str


def _collector_properties(kpi: Kpi) -> dict[str, str]:
    props = getattr(kpi.metric_collector, "properties", None)
    items = getattr(props, "property", ()) if props is not None else ()
    return {p.name: p.value or "" for p in items}


def kpi_enabled(group: VmGroup) -> bool:
    """``kpi_data/enabled`` (true when the model has no such leaf)."""
    return bool(getattr(group.kpi_data, "enabled", True))


def group_addresses(group: VmGroup) -> dict[int, str]:
    """The interfaces' static addresses by nicid (what the payload itself says)."""
    return {i.nicid: i.ip_address for i in group.interfaces.interface if i.ip_address}


def kpi_specs(
    group: VmGroup,
    *,
    addresses: Mapping[int, str] | None = None,
    kinds: Mapping[str, MetricKind],
    definitions: Mapping[str, MetricDefinition] | None = None,
) -> tuple[KpiSpec, ...]:
    """The group's KPIs resolved; ``kinds`` by collector type (see ``collector_kind``)."""
    addrs = group_addresses(group) | dict(addresses or {})
    out = []
    for kpi in group.kpi_data.kpi:
        mc = kpi.metric_collector
        if kpi.metric_cond.upper() not in MetricCond.__members__:
            # refused at edit time (check_group); a stored configuration from before is
            # skipped, not a crash of the monitor
            log.warning("group %s: KPI %s skipped: metric_cond %r", group.name,
                        kpi.event_name, kpi.metric_cond)  # fmt: skip
            continue
        definition = (definitions or {}).get(mc.type)
        props = dict(definition.properties) if definition else {}
        props |= _collector_properties(kpi)
        out.append(
            KpiSpec(
                event_name=kpi.event_name, collector_type=mc.type,
                kind=kinds.get(mc.type, MetricKind.THRESHOLD), metric_value=kpi.metric_value,
                metric_cond=MetricCond(kpi.metric_cond.upper()), metric_type=kpi.metric_type,
                occurrences_true=kpi.metric_occurrences_true,
                occurrences_false=kpi.metric_occurrences_false,
                poll_seconds=mc.poll_frequency * _UNITS.get(mc.polling_unit, 1.0),
                continuous_alarm=mc.continuous_alarm, nicid=mc.nicid,
                address=addrs.get(mc.nicid) if mc.nicid is not None else None,
                properties=props,
            )
        )  # fmt: skip
    return tuple(out)


def rule_actions(group: VmGroup) -> dict[str, tuple[RuleAction, ...]]:
    """The group's admin rules parsed, by KPI event_name (checked at edit time).

    An action that does not parse (a configuration stored before the check) is skipped with a
    warning rather than stopping the monitor.
    """
    out: dict[str, tuple[RuleAction, ...]] = {}
    for rule in group.rules.admin_rules.rule:
        actions = []
        for text in rule.action:
            try:
                actions.append(parse_action(text))
            except RuleSyntaxError as exc:
                log.warning("group %s: %s; skipped", group.name, exc)
        out[rule.event_name] = tuple(actions)
    return out


def watch_for(
    *,
    vm_name: str,
    tenant: str,
    deployment: str,
    group: VmGroup,
    connector_id: str,
    since: float,
    kinds: Mapping[str, MetricKind],
    addresses: Mapping[int, str] | None = None,
    definitions: Mapping[str, MetricDefinition] | None = None,
    enabled: bool = True,
    paused: bool = False,
) -> VmWatch:
    return VmWatch(
        vm_name=vm_name, tenant=tenant, deployment=deployment, group=group.name,
        connector_id=connector_id, enabled=enabled, paused=paused,
        kpi_enabled=kpi_enabled(group), bootup_time=group.bootup_time,
        recovery_wait_time=group.recovery_wait_time, since=since,
        kpis=kpi_specs(group, addresses=addresses, kinds=kinds, definitions=definitions),
        rules=rule_actions(group),
    )  # fmt: skip


def _pool_addresses(group: VmGroup, network: str) -> Iterable[str]:
    for pool in group.scaling.static_ip_address_pool:
        if pool.network != network:
            continue
        yield from pool.ip_address
        if pool.ip_address_range is not None:
            yield pool.ip_address_range.start
            yield pool.ip_address_range.end


def check_group(
    group: VmGroup,
    *,
    known_types: frozenset[str],
    known_scripts: frozenset[str] | None = None,
    allowed: AllowedNetworks | None = None,
) -> list[MonitoringProblem]:
    """Everything the configuration alone shows to be wrong with the group's monitoring."""
    problems: list[MonitoringProblem] = []
    interfaces = {i.nicid: i for i in group.interfaces.interface}
    for kpi in group.kpi_data.kpi:
        base = f"kpi_data/kpi[event_name='{kpi.event_name}']"
        mc = kpi.metric_collector
        message = check_collector_type(mc.type, known_types)
        if message is not None:
            problems.append(
                MonitoringProblem(path=f"{base}/metric_collector/type", message=message)
            )
        if kpi.metric_cond.upper() not in MetricCond.__members__:
            problems.append(
                MonitoringProblem(
                    path=f"{base}/metric_cond",
                    message=f"metric_cond {kpi.metric_cond!r} is not one of GT, LT, EQ, GE, LE",
                )
            )
        if allowed is None or mc.nicid is None or mc.nicid not in interfaces:
            continue
        nic = interfaces[mc.nicid]
        candidates = (
            [nic.ip_address] if nic.ip_address else list(_pool_addresses(group, nic.network))
        )
        for address in candidates:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                continue  # the YANG types refuse it already
            refused = allowed.check(address)
            if refused is not None:
                problems.append(
                    MonitoringProblem(path=f"{base}/metric_collector/nicid", message=str(refused))
                )
    for rule in group.rules.admin_rules.rule:
        for problem in check_actions(rule.action, known_scripts=known_scripts):
            problems.append(
                MonitoringProblem(
                    path=f"rules/admin_rules/rule[event_name='{rule.event_name}']/action",
                    message=str(problem),
                )
            )
    return problems
