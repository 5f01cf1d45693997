"""What the reactor is asked and what it answers: the target of a run and its outcome.

:class:`DeploymentTarget` is the desired state handed in (by the daemon, from the running
configuration); :class:`RunOutcome` is the result of one convergence run. What the reactor
knows of a deployment is its :class:`~esc_orch.model.record.DeploymentRecord`. All frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from esc_orch.model.config import Deployment, Flavor
from esc_orch.model.config import VimConnector as ConnectorConfig
from esc_orch.model.failure import Failure, describe
from esc_orch.model.lifecycle import LifecycleOperation


@dataclass(frozen=True, kw_only=True)
class DeploymentTarget:
    """Converge deployment ``tenant``/``name`` to ``deployment`` (``None``: undeploy it).

    ``connectors`` are all configured VIM connectors: every one is observed, since a VM (or a
    stale copy of it) may be on any of them. ``known``/``applied``/``depid`` restore the
    ``operation`` forces the kind of run
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
    stopped: frozenset[str] = frozenset()
    foreign: frozenset[str] = frozenset()
    operation: LifecycleOperation | None = None
    resync: bool = False
    #: VMs to reboot once the deployment has converged (vmAction/serviceAction REBOOT).
    reboot: frozenset[str] = frozenset()
    #: Send no service-level event (the caller reports its own, e.g. SERVICE_STOPPED).
    quiet: bool = False
    #: vm_groups whose VM_ALIVE the monitor sends (a KPI watches them): the run does not
    #: report their VMs alive when it first sees them running, and a deploy run leaves
    #: SERVICE_ALIVE to the monitor until they are (``DeploymentRecord.alive_owed``).
    alive_by_monitor: frozenset[str] = frozenset()
    #: The configuration transaction this target reflects: its service event settles the
    #: service events owed by the commits up to it (``DeploymentRecord.settled_txid``).
    txid: int = 0

    def __post_init__(self) -> None:
        if self.deployment is not None and self.deployment.name != self.name:
            raise ValueError(f"target {self.name!r} carries deployment {self.deployment.name!r}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    tenant: str
    name: str
    operation: LifecycleOperation
    ok: bool
    failure: Failure | None = None
    steps: int = 0
    #: Facts for the operator, e.g. a stale copy may remain on a host that did not answer.
    notes: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        """The failure's sentence (:func:`esc_orch.model.failure.describe`)."""
        return describe(self.failure) if self.failure is not None else None
