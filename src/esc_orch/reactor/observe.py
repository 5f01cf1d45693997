"""Ask every configured connector what it runs, turning failures into "unreachable" views.

One try per connector and step (connectors retry their own transport errors): a host that does
not answer must not stall the run, it must show up as unknown so the planner can decide
(scenario 2). Only VMs named after the deployment are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from esc_orch.model.lifecycle import AppliedVm
from esc_orch.reconcile.observed import ConnectorView, Observation
from esc_orch.vim.errors import VimError
from esc_orch.vim.protocol import Connector

ConnectorProvider = Callable[[str], Connector]
"""Returns the (shared, long-lived) connector of a VIM connector id; raises LookupError."""


async def view_of(
    *, connectors: ConnectorProvider, connector_id: str, prefix: str
) -> ConnectorView:
    try:
        connector = connectors(connector_id)
        info = await connector.describe()
        vms = await connector.list_vms()
    except (VimError, LookupError, ValueError) as exc:
        return ConnectorView(
            connector_id=connector_id,
            reachable=False,
            detail=f"{type(exc).__name__}: {exc}",
        )
    return ConnectorView(
        connector_id=connector_id,
        reachable=True,
        host=info.name,
        storages=info.storages,
        vms=tuple(vm for vm in vms if vm.name.startswith(prefix)),
    )


async def observe(
    *,
    connectors: ConnectorProvider,
    connector_ids: Iterable[str],
    deployment: str,
    applied: Mapping[str, AppliedVm],
    foreign: frozenset[str] = frozenset(),
) -> Observation:
    """Views of ``connector_ids`` (concurrently), with the reactor's memory attached."""
    ids = sorted(set(connector_ids))
    views = await asyncio.gather(
        *(view_of(connectors=connectors, connector_id=c, prefix=f"{deployment}_") for c in ids)
    )
    return Observation(views=tuple(views), applied=dict(applied), foreign=foreign)
