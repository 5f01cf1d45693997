"""Assembly of the NETCONF server's protocol side: registry, operations, capabilities, core.

One function, so the daemon and the tests build exactly the same server, and so the places
where later work plugs in (the ESC action sink, libyang RPC validation, list keys from the
schema, extra capabilities such as notifications) are parameters, not edits.
"""

from __future__ import annotations

from collections.abc import Iterable

from esc_orch.model.validate import require_valid_rpc
from esc_orch.northbound.backend import ConfigBackend
from esc_orch.northbound.core import Limits, NetconfCore
from esc_orch.northbound.eo_rpcs import EoActionSink, register_eo_rpcs
from esc_orch.northbound.esc_rpcs import EscActionSink, RpcValidator, register_esc_rpcs
from esc_orch.northbound.filters import KeyResolver
from esc_orch.northbound.monitoring import NetconfMonitoring, schema_catalog
from esc_orch.northbound.notifications import NotificationService
from esc_orch.northbound.ops import register_base_operations
from esc_orch.northbound.rpc import RpcRegistry
from esc_orch.northbound.session import server_capabilities


def build_core(
    *,
    backend: ConfigBackend,
    esc_revision: str,
    limits: Limits | None = None,
    extra_capabilities: Iterable[str] = (),
    esc_sink: EscActionSink | None = None,
    eo_sink: EoActionSink | None = None,
    esc_validator: RpcValidator | None = None,
    key_leaves: KeyResolver | None = None,
    notifications: NotificationService | None = None,
    monitoring: NetconfMonitoring | None = None,
) -> NetconfCore:
    """A :class:`NetconfCore` with the base operations, the ESC RPCs and ours registered.

    ``eo_sink`` carries out ``eo:confirm-host-down`` and ``eo:recheck-vim-connector``.

    ESC RPC input is validated against yang/esc.yang by libyang unless ``esc_validator``
    replaces it. With ``notifications`` (started by the caller), create-subscription, the
    stream list and the :notification and :interleave capabilities are added. Schema
    discovery (get-schema, netconf-state, the YANG library) is always served.
    """
    monitoring = monitoring or NetconfMonitoring(schemas=schema_catalog())
    extra_capabilities = [*monitoring.capabilities, *extra_capabilities]
    if notifications is not None:
        extra_capabilities = [*notifications.capabilities, *extra_capabilities]
    registry = RpcRegistry()
    register_base_operations(registry, key_leaves=key_leaves)
    register_esc_rpcs(registry, sink=esc_sink, validator=esc_validator or require_valid_rpc)
    register_eo_rpcs(registry, sink=eo_sink, validator=esc_validator or require_valid_rpc)
    core = NetconfCore(
        backend=backend,
        registry=registry,
        capabilities=server_capabilities(esc_revision=esc_revision, extra=extra_capabilities),
        limits=limits,
    )
    monitoring.install(core)
    if notifications is not None:
        notifications.install(core)
    return core
