"""What the reactor knows of each deployment: the input it converges to and its opdata.

:class:`DeploymentTarget` is the desired state handed in (by the daemon, from the running
configuration); :class:`DeploymentStatus` is what opdata shows (state machines, VM instances);
:class:`RunOutcome` is the result of one convergence run. All frozen: they cross into the daemon,
the store and the northbound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from esc_orch.model.config import Deployment, Flavor
from esc_orch.model.config import VimConnector as ConnectorConfig
from esc_orch.model.lifecycle import (
    AppliedVm,
    DeploymentState,
    LifecycleOperation,
    VmIdentity,
    VmLifecycleState,
)
from esc_orch.model.vim import VmState


@dataclass(frozen=True, kw_only=True)
class DeploymentTarget:
    """Converge deployment ``tenant``/``name`` to ``deployment`` (``None``: undeploy it).

    ``connectors`` are all configured VIM connectors: every one is observed, since a VM (or a
    stale copy of it) may be on any of them. ``known``/``applied``/``depid`` restore the
    reactor's memory after a restart (from opdata). ``operation`` forces the kind of run
    (resume); by default it is deploy for a deployment not yet active, else update.
    ``resync`` runs send no service event unless a reported step was taken.
    ``stopped``/``reboot`` carry the ESC power actions; ``quiet`` leaves the service event
    to the caller.
    """

    tenant: str
    name: str
    deployment: Deployment | None
    flavors: Mapping[str, Flavor] = field(default_factory=dict)
    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)
    tenant_id: str | None = None
    depid: str | None = None
    known: tuple[VmIdentity, ...] = ()
    applied: Mapping[str, AppliedVm] = field(default_factory=dict)
    stopped: frozenset[str] = frozenset()
    foreign: frozenset[str] = frozenset()
    operation: LifecycleOperation | None = None
    resync: bool = False
    #: VMs already reported alive (restored after a restart: VM_ALIVE is sent once).
    alive: frozenset[str] = frozenset()
    #: VMs to reboot once the deployment has converged (vmAction/serviceAction REBOOT).
    reboot: frozenset[str] = frozenset()
    #: Send no service-level event (the caller reports its own, e.g. SERVICE_STOPPED).
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.deployment is not None and self.deployment.name != self.name:
            raise ValueError(f"target {self.name!r} carries deployment {self.deployment.name!r}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class VmStatus:
    """One ``vm_instance`` and its ``vm_state_machine`` entry."""

    identity: VmIdentity
    state: VmLifecycleState
    connector_id: str | None = None
    vim_project: str | None = None
    observed: VmState | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentStatus:
    tenant: str
    name: str
    depid: str
    state: DeploymentState
    vms: tuple[VmStatus, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    tenant: str
    name: str
    operation: LifecycleOperation
    ok: bool
    reason: str | None = None
    steps: int = 0
    #: Facts for the operator, e.g. a stale copy may remain on a host that did not answer.
    notes: tuple[str, ...] = ()
