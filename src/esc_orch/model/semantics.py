"""Edit-time checks the YANG module cannot express: what the configuration alone decides.

libyang proves a payload well-typed; some mistakes are still visible in the configuration
alone — a known extension property with a bad value (the seed's ``disk-resize`` = ``>true``),
a static IP pool smaller than ``max_active``, Gluster storage on a connector without
``cluster_name``, a collector type or rule script nobody provides, a group without a locator
when there is no default VIM connector, an element the group's VIM cannot honour, a fence
agent type nobody installed (or the retired ``fence_agent_*`` properties). Refusing
them at edit-config / validate / commit (with the error-path of the offending node, nothing
written) beats a FAILURE event later. What only the VIM can say stays asynchronous.

What the daemon can run (collector types, rule scripts, fence agent types) is an input,
:class:`Vocabulary`, so the monitoring code can register more without touching this module.
Pure: works on the assembled ``<data>`` tree the datastore validates.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from lxml import etree

from esc_orch.model.config import (
    Deployment,
    FenceAgentSettings,
    VimConnector,
    VmGroup,
    default_connector,
)
from esc_orch.model.convert import unit_model
from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.model.schema import EO_NS, EO_PREFIX, ESC_NS, ESC_PREFIX

#: Rule actions every daemon understands (the ``<what>`` of ``'<edge> <what>'``).
BUILTIN_RULE_ACTIONS = frozenset(
    {"log", "recover autohealing", "servicebooted.sh", "esc_vm_alive_notification"}
)

#: Per connector type, the elements its VIM cannot honour, and why (shown to the user).
CONNECTOR_LIMITS: Mapping[str, Mapping[str, str]] = {
    "CSP": {
        "volumes": "the CSP VIM does not support attached volumes (a CSP service has one disk)",
        "placement": "the CSP VIM does not support placement policies (one host or cluster "
        "per connector: choose the host with the locator)",
        "policies": "the CSP VIM does not support placement policies (one host or cluster "
        "per connector: choose the host with the locator)",
        "locators": "the CSP VIM does not support deployment locators (datacenter is for "
        "VMware multi-VDC)",
    },
}


def _builtin_only(_what: str) -> bool:
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Vocabulary:
    """What the running daemon can do, as the edit-time checks need to know it."""

    #: Collector types a registered collector provides.
    collector_types: frozenset[str] = frozenset({"ICMPPing"})
    #: Whether a rule action other than the built-ins (a script name) can be run.
    rule_action: Callable[[str], bool] = _builtin_only
    #: Elements refused per connector type (see :data:`CONNECTOR_LIMITS`).
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: CONNECTOR_LIMITS)
    #: The daemon's monitoring check of a vm_group (``monitor.watch.check_group``): problems as
    #: (path relative to the vm_group, message). When set, it replaces the checks of
    #: collector types and rule actions here.
    monitoring_check: Callable[[VmGroup], Iterable[tuple[str, str]]] | None = None
    #: Fence agent types installed (upper-case entry point names of esc_orch.fence_agents);
    #: None: not known here, so not checked.
    fence_types: frozenset[str] | None = None
    #: What an installed agent type says is wrong with a connector's fence agent, as
    #: (leaf of eo:fence_agent, sentence) (``esc_orch.fence.settings.settings_problems``).
    fence_check: Callable[[str, FenceAgentSettings], Iterable[tuple[str, str]]] | None = None


# -- paths -------------------------------------------------------------------------------


def _lit(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _step(node: str, /, **keys: str) -> str:
    preds = "".join(f"[{ESC_PREFIX}:{k}={_lit(v)}]" for k, v in keys.items())
    return f"{ESC_PREFIX}:{node}{preds}"


def _path(*steps: str) -> str:
    return "/" + "/".join(steps)


def group_path(tenant: str, deployment: str, group: str | None = None) -> str:
    """The error-path of a deployment (or of one of its vm_groups)."""
    steps = [
        _step("esc_datamodel"),
        _step("tenants"),
        _step("tenant", name=tenant),
        _step("deployments"),
        _step("deployment", name=deployment),
    ]
    if group is not None:
        steps.append(_step("vm_group", name=group))
    return _path(*steps)


def _connector_path(cid: str) -> str:
    return _path(
        _step("esc_system_config"), _step("vim_connectors"), _step("vim_connector", id=cid)
    )


def _property_path(base: str, extension: str, prop: str, container: str | None = None) -> str:
    steps = [base, _step("extensions"), _step("extension", name=extension)]
    if container is not None:
        steps += [_step("containers"), _step("container", name=container)]
    steps += [_step("properties"), _step("property", name=prop), _step("value")]
    return "/".join(steps)


# -- values of known extension properties -----------------------------------------------

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _is_bool(value: str) -> bool:
    return value.strip().lower() in _TRUE | _FALSE


def _is_int(low: int, high: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return low <= int(value.strip()) <= high
        except ValueError:
            return False

    return check


def _one_of(*allowed: str) -> Callable[[str], bool]:
    return lambda value: value.strip().lower() in allowed


#: extension -> property -> (check, what a valid value is)
_KNOWN: Mapping[str, Mapping[str, tuple[Callable[[str], bool], str]]] = {
    "image": {
        "disk-resize": (_is_bool, "true or false"),
        "disk_type": (_one_of("virtio", "ide", "scsi", "sata"), "virtio, ide, scsi or sata"),
        "disk_storage_name": (_one_of("local", "gluster"), "local or gluster"),
    },
    "interfaces": {
        "type": (_one_of("access", "trunk"), "access or trunk"),
        "tagged": (_is_bool, "true or false"),
        "vlan": (_is_int(1, 4094), "a VLAN number from 1 to 4094"),
        "bandwidth": (_is_int(0, 2**31 - 1), "a non-negative number"),
    },
    "serial_ports": {
        "serial_type": (_one_of("console", "telnet"), "console or telnet"),
    },
}


def _container_name_path(base: str, extension: str, container: str) -> str:
    steps = [base, _step("extensions"), _step("extension", name=extension)]
    steps += [_step("containers"), _step("container", name=container), _step("name")]
    return "/".join(steps)


def _bad(tag: ErrorTag, path: str, message: str, app_tag: str) -> RpcError:
    return RpcError(tag=tag, path=path, message=message, app_tag=app_tag)


def _extension_errors(group: VmGroup, base: str) -> Iterator[RpcError]:
    nicids = {str(i.nicid) for i in group.interfaces.interface}
    for ext in group.extensions.extension:
        known = _KNOWN.get(ext.name)
        if known is None:
            continue
        items = [(None, ext.properties)] + [
            (c.name, c.properties) for c in ext.containers.container
        ]
        for container, props in items:
            if ext.name == "interfaces" and container is not None and container not in nicids:
                yield _bad(
                    ErrorTag.INVALID_VALUE,
                    _container_name_path(base, ext.name, container),
                    f"extension interfaces: container {container!r} names no interface of "
                    f"vm_group {group.name} (nicids: {', '.join(sorted(nicids)) or 'none'})",
                    "unknown-interface",
                )
            if ext.name == "serial_ports" and container is not None and not container.isdigit():
                yield _bad(
                    ErrorTag.INVALID_VALUE,
                    _container_name_path(base, ext.name, container),
                    f"extension serial_ports: container {container!r} must be a port index "
                    "(0, 1...)",
                    "bad-extension-value",
                )
            for prop in props.property:
                rule = known.get(prop.name)
                if rule is None or rule[0](prop.value or ""):
                    continue
                yield _bad(
                    ErrorTag.INVALID_VALUE,
                    _property_path(base, ext.name, prop.name, container),
                    f"extension {ext.name}: {prop.name} must be {rule[1]}, "
                    f"not {prop.value or ''!r}",
                    "bad-extension-value",
                )


# -- scaling ---------------------------------------------------------------------------------


def _pool_errors(group: VmGroup, base: str) -> Iterator[RpcError]:
    needed = group.scaling.max_active
    for pool in group.scaling.static_ip_address_pool:
        path = "/".join(
            [base, _step("scaling"), _step("static_ip_address_pool", network=pool.network)]
        )
        if pool.ip_address_range is not None:
            start = ipaddress.ip_address(pool.ip_address_range.start)
            end = ipaddress.ip_address(pool.ip_address_range.end)
            if start.version != end.version or int(end) < int(start):
                yield _bad(
                    ErrorTag.INVALID_VALUE,
                    f"{path}/{_step('ip_address_range')}/{_step('end')}",
                    f"static_ip_address_pool {pool.network}: the range ends ({end}) before "
                    f"it starts ({start})",
                    "bad-ip-range",
                )
                continue
            size = int(end) - int(start) + 1
        else:
            size = len(pool.ip_address)
        if size < needed:
            yield _bad(
                ErrorTag.OPERATION_FAILED,
                path,
                f"static_ip_address_pool for network {pool.network!r} has {size} address(es) "
                f"but max_active is {needed}: add addresses or lower max_active",
                "ip-pool-too-small",
            )


# -- monitoring --------------------------------------------------------------------------


_MONITORING_TAGS = (
    ("metric_collector/type", "unknown-collector"),
    ("metric_collector/nicid", "target-not-allowed"),
    ("metric_cond", "bad-metric-cond"),
    ("/action", "unknown-rule-action"),
)


def _relative(path: str) -> str:
    """``kpi_data/kpi[event_name='X']/type`` with every step in the esc prefix."""
    steps, depth, current = [], 0, ""
    for ch in path:
        if ch == "/" and depth == 0:
            steps.append(current)
            current = ""
            continue
        depth += (ch == "[") - (ch == "]")
        current += ch
    steps.append(current)
    out = []
    for step in steps:
        name, bracket, rest = step.partition("[")
        preds = bracket + rest
        if preds and not preds.startswith("[."):
            preds = preds.replace("[", f"[{ESC_PREFIX}:")
        out.append(f"{ESC_PREFIX}:{name}{preds}")
    return "/".join(out)


def _monitoring_errors(group: VmGroup, base: str, vocabulary: Vocabulary) -> Iterator[RpcError]:
    if vocabulary.monitoring_check is not None:
        for path, message in vocabulary.monitoring_check(group):
            tag = next((t for end, t in _MONITORING_TAGS if path.endswith(end)), "bad-monitoring")
            yield _bad(ErrorTag.INVALID_VALUE, f"{base}/{_relative(path)}", message, tag)
        return
    known = ", ".join(sorted(vocabulary.collector_types)) or "none"
    for kpi in group.kpi_data.kpi:
        kind = kpi.metric_collector.type
        if kind not in vocabulary.collector_types:
            yield _bad(
                ErrorTag.INVALID_VALUE,
                "/".join(
                    [
                        base,
                        _step("kpi_data"),
                        _step("kpi", event_name=kpi.event_name),
                        _step("metric_collector"),
                        _step("type"),
                    ]
                ),
                f"kpi {kpi.event_name}: no collector of type {kind!r} is registered "
                f"(registered: {known})",
                "unknown-collector",
            )
    for rule in group.rules.admin_rules.rule:
        for action in rule.action:
            what = action.split(" ", 1)[1].strip() if " " in action else ""
            if what in BUILTIN_RULE_ACTIONS or vocabulary.rule_action(what):
                continue
            yield _bad(
                ErrorTag.INVALID_VALUE,
                "/".join(
                    [
                        base,
                        _step("rules"),
                        _step("admin_rules"),
                        _step("rule", event_name=rule.event_name),
                        f"{ESC_PREFIX}:action[.={_lit(action)}]",
                    ]
                ),
                f"rule {rule.event_name}: action {action!r} names no known action or "
                f"registered script (built in: {', '.join(sorted(BUILTIN_RULE_ACTIONS))})",
                "unknown-rule-action",
            )


# -- placement on a connector -------------------------------------------------------------


def _connector_errors(
    group: VmGroup,
    base: str,
    connectors: Mapping[str, VimConnector],
    vocabulary: Vocabulary,
) -> Iterator[RpcError]:
    vim_id = group.locator.vim_id or default_connector(connectors)
    if vim_id is None:
        yield _bad(
            ErrorTag.DATA_MISSING,
            f"{base}/{_step('locator')}",
            f"vm_group {group.name} has no locator/vim_id and there is no default VIM "
            f"connector ({len(connectors)} configured, none with the property default = true)"
            ": give the group a locator, or mark one connector default",
            "no-default-vim-connector",
        )
        return
    connector = connectors.get(vim_id)
    if connector is None:
        return  # the leafref says so (or the connector is not in this view)
    limits = vocabulary.limits.get(connector.type, {})
    if group.volumes.volume and "volumes" in limits:
        yield _bad(
            ErrorTag.OPERATION_NOT_SUPPORTED,
            f"{base}/{_step('volumes')}",
            f"vm_group {group.name}: volumes: {limits['volumes']} (connector {vim_id})",
            "vim-unsupported",
        )
    placement = group.placement
    if (placement.type or placement.host or placement.zone) and "placement" in limits:
        yield _bad(
            ErrorTag.OPERATION_NOT_SUPPORTED,
            f"{base}/{_step('placement')}",
            f"vm_group {group.name}: placement: {limits['placement']} (connector {vim_id})",
            "vim-unsupported",
        )
    if group.disk_storage_name.strip().lower() == "gluster" and not connector.properties.get(
        "cluster_name"
    ):
        yield _bad(
            ErrorTag.OPERATION_FAILED,
            _property_path(base, "image", "disk_storage_name"),
            f"vm_group {group.name}: disk_storage_name gluster needs a cluster connector, but "
            f"VIM connector {vim_id!r} has no cluster_name property: add cluster_name to it "
            "or use local",
            "storage-unavailable",
        )


def _deployment_errors(
    tenant: str,
    dep: Deployment,
    connectors: Mapping[str, VimConnector],
    vocabulary: Vocabulary,
) -> Iterator[RpcError]:
    types: set[str] = set()
    for group in dep.vm_group:
        base = group_path(tenant, dep.name, group.name)
        yield from _extension_errors(group, base)
        yield from _pool_errors(group, base)
        yield from _monitoring_errors(group, base, vocabulary)
        yield from _connector_errors(group, base, connectors, vocabulary)
        vim_id = group.locator.vim_id or default_connector(connectors)
        if vim_id is not None and vim_id in connectors:
            types.add(connectors[vim_id].type)
    dep_base = group_path(tenant, dep.name)
    policies = dep.policies.placement or dep.policies.placement_group
    for element, present in (
        ("policies", bool(policies)),
        ("locators", bool(dep.locators.datacenter)),
    ):
        if not present:
            continue
        for kind in sorted(types):
            reason = vocabulary.limits.get(kind, {}).get(element)
            if reason:
                yield _bad(
                    ErrorTag.OPERATION_NOT_SUPPORTED,
                    f"{dep_base}/{_step(element)}",
                    f"deployment {dep.name}: {element}: {reason}",
                    "vim-unsupported",
                )
                break


def _connector_property_errors(
    connectors: Mapping[str, VimConnector], only: Collection[str] | None
) -> Iterator[RpcError]:
    marked: list[str] = []
    for cid, connector in sorted(connectors.items()):
        value = connector.properties.get("default")
        if value is not None and not _is_bool(value) and (only is None or cid in only):
            yield _bad(
                ErrorTag.INVALID_VALUE,
                f"{_connector_path(cid)}/{_step('properties')}/"
                f"{_step('property', name='default')}/{_step('value')}",
                f"VIM connector {cid}: property default must be true or false, not {value!r}",
                "bad-property-value",
            )
        if connector.marked_default:
            marked.append(cid)
    if len(marked) > 1:
        culprit = next((c for c in reversed(marked) if only is None or c in only), marked[-1])
        yield _bad(
            ErrorTag.OPERATION_FAILED,
            f"{_connector_path(culprit)}/{_step('properties')}/{_step('property', name='default')}",
            f"only one VIM connector can be the default: {', '.join(marked)} all have the "
            "property default = true",
            "two-default-vim-connectors",
        )


# -- fence agents (eo:fence_agent) -----------------------------------------------------------

#: The retired fence_agent_* properties of a vim_connector, and where each went.
RETIRED_FENCE_PROPERTIES: Mapping[str, str] = {
    "fence_agent_type": "eo:fence_agent/type",
    "fence_agent_url": "eo:fence_agent/url",
    "fence_agent_host": "eo:fence_agent/host",
    "fence_agent_login": "eo:fence_agent/username",
    "fence_agent_user": "eo:fence_agent/password (the password itself, not a user id)",
    "fence_agent_timeout": "eo:fence_agent/timeout",
}
RETIRED_FENCE_PREFIX = "fence_agent_"


def _fence_path(cid: str, leaf: str | None = None) -> str:
    path = f"{_connector_path(cid)}/{EO_PREFIX}:fence_agent"
    return f"{path}/{EO_PREFIX}:{leaf}" if leaf else path


def _fence_errors(
    connectors: Mapping[str, VimConnector], only: Collection[str] | None, vocabulary: Vocabulary
) -> Iterator[RpcError]:
    for cid, connector in sorted(connectors.items()):
        if only is not None and cid not in only:
            continue  # a stored connector is not refused for an edit that does not touch it
        for prop in connector.properties.property:
            if not prop.name.startswith(RETIRED_FENCE_PREFIX):
                continue
            rest = prop.name[len(RETIRED_FENCE_PREFIX) :]
            moved = RETIRED_FENCE_PROPERTIES.get(
                prop.name, f"eo:fence_agent/properties/property {rest!r}"
            )
            yield _bad(
                ErrorTag.INVALID_VALUE,
                f"{_connector_path(cid)}/{_step('properties')}/"
                f"{_step('property', name=prop.name)}/{_step('name')}",
                f"VIM connector {cid}: property {prop.name} is no longer read: a fence agent "
                f"is configured in the vim_connector's fence_agent container (namespace "
                f"{EO_NS}); put this value in {moved} (docs/fencing.md)",
                "retired-fence-property",
            )
        agent = connector.fence_agent
        if agent is None:
            continue
        known = vocabulary.fence_types
        if known is not None and agent.type.upper() not in known:
            yield _bad(
                ErrorTag.INVALID_VALUE,
                _fence_path(cid, "type"),
                f"VIM connector {cid}: no fence agent of type {agent.type!r} is installed "
                f"(installed: {', '.join(sorted(known)) or 'none'})",
                "unknown-fence-agent-type",
            )
        if vocabulary.fence_check is not None and (known is None or agent.type.upper() in known):
            for leaf, message in vocabulary.fence_check(cid, agent):
                yield _bad(
                    ErrorTag.INVALID_VALUE,
                    _fence_path(cid, leaf),
                    f"VIM connector {cid}: fence agent {agent.type}: {message}",
                    "bad-fence-agent",
                )
        if (agent.username is None) != (agent.password is None):
            given, missing = ("username", "password")
            if agent.username is None:
                given, missing = missing, given
            yield _bad(
                ErrorTag.DATA_MISSING,
                _fence_path(cid, missing),
                f"VIM connector {cid}: the fence agent has a {given} but no {missing}: give "
                "both (the controller's login) or neither",
                "incomplete-fence-credentials",
            )


def check_config(
    data: etree._Element,
    *,
    vocabulary: Vocabulary,
    deployments: Collection[tuple[str, str]] | None = None,
    connectors: Collection[str] | None = None,
) -> list[RpcError]:
    """The semantic errors of a valid ``<data>`` tree (libyang has passed it).

    ``deployments`` ((tenant, name) pairs) and ``connectors`` (ids) limit the checks to the
    units an edit changes; None checks all of them. The tree must hold every VIM connector
    when a checked group has no locator (the default connector is resolved among them).
    """
    ns = {"e": ESC_NS}
    models: dict[str, VimConnector] = {}
    for element in data.iterfind("e:esc_system_config/e:vim_connectors/e:vim_connector", ns):
        model: VimConnector = unit_model("vim_connector", element)
        models[model.id] = model
    errors = list(_connector_property_errors(models, connectors))
    errors += _fence_errors(models, connectors, vocabulary)
    for tenant in data.iterfind("e:esc_datamodel/e:tenants/e:tenant", ns):
        tenant_name = tenant.findtext("e:name", namespaces=ns) or ""
        for element in tenant.iterfind("e:deployments/e:deployment", ns):
            dep_name = element.findtext("e:name", namespaces=ns) or ""
            if deployments is not None and (tenant_name, dep_name) not in deployments:
                continue
            dep: Deployment = unit_model("deployment", element)
            errors += _deployment_errors(tenant_name, dep, models, vocabulary)
    return errors
