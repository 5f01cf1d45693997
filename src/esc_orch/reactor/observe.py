"""Ask the connectors a deployment needs what they run, turning failures into "unreachable".

One try per connector and step (connectors retry their own transport errors), bounded by a
timeout: a host that does not answer must not stall the run, it must show up as unknown so the
planner can decide (scenario 2). Only the connectors the deployment places VMs on or has VMs
on are asked (:func:`needed_connectors`), so a partitioned host with none of its VMs slows
nothing (issue 14, defect 7). Only VMs named after the deployment are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from esc_orch.model.config import Deployment, VimConnector, default_connector
from esc_orch.model.lifecycle import AppliedVm
from esc_orch.model.record import DeploymentRecord
from esc_orch.model.vim import HostInfo, VmState
from esc_orch.reconcile.observed import ConnectorView, Observation
from esc_orch.vim.errors import VimError
from esc_orch.vim.protocol import Connector

ConnectorProvider = Callable[[str], Connector]
"""Returns the (shared, long-lived) connector of a VIM connector id; raises LookupError."""


def needed_connectors(
    *,
    deployment: Deployment | None,
    connectors: Mapping[str, VimConnector],
    record: DeploymentRecord | None,
    extra: Iterable[str] = (),
) -> frozenset[str]:
    """The connectors a run must ask: where the groups are placed (locator, or the default
    connector), and wherever the record placed or last saw a VM (a move's source, a stale
    copy, a crash's half-done step); ``extra`` e.g. connectors named by open intents."""
    needed = set(extra)
    if deployment is not None:
        fallback = default_connector(connectors)
        for group in deployment.vm_group:
            vim_id = group.locator.vim_id or fallback
            if vim_id is not None:
                needed.add(vim_id)
    if record is not None:
        for vm in record.vms:
            if vm.applied is not None:
                needed.add(vm.applied.connector_id)
            if vm.seen_on is not None:
                needed.add(vm.seen_on)
    return frozenset(c for c in needed if c in connectors) or frozenset(connectors)


async def view_of(
    *,
    connectors: ConnectorProvider,
    connector_id: str,
    prefix: str,
    timeout: float | None = None,  # noqa: ASYNC109 - one bound per connector, not the call
) -> ConnectorView:
    """One connector's view; ``timeout`` bounds it (a silent host must not stall the run)."""

    async def ask() -> tuple[HostInfo, tuple[VmState, ...]]:
        connector = connectors(connector_id)
        return await connector.describe(), await connector.list_vms()

    try:
        info, vms = await asyncio.wait_for(ask(), timeout=timeout)
    except TimeoutError:
        return ConnectorView(
            connector_id=connector_id,
            reachable=False,
            detail=f"no answer within {timeout:g} s",
        )
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
    timeout: float | None = None,  # noqa: ASYNC109 - per connector, see view_of
) -> Observation:
    """Views of ``connector_ids`` (concurrently, each bounded by ``timeout``), with the
    reactor's memory attached."""
    ids = sorted(set(connector_ids))
    views = await asyncio.gather(
        *(
            view_of(connectors=connectors, connector_id=c, prefix=f"{deployment}_", timeout=timeout)
            for c in ids
        )
    )
    return Observation(views=tuple(views), applied=dict(applied), foreign=foreign)
