"""Carrying plans out: the lifecycle engine between the configuration and the VIMs.

:class:`Reactor` converges each deployment to its :class:`DeploymentTarget` through
:class:`~esc_orch.vim.VimConnector` objects, re-planning after every step with
:func:`esc_orch.reconcile.plan`. It writes each step to a :class:`Journal` (intent before,
outcome after) and reports escEvents to an :class:`EventSink`; the daemon supplies the durable
journal and the notification bus, tests the in-memory ones here.
"""

from esc_orch.reactor.engine import DEFAULT_RETRY, Reactor
from esc_orch.reactor.events import EventSink, MemoryEventSink, vm_alive_message, vm_details
from esc_orch.reactor.execute import Executor, Replan, StepFailed, StepResult
from esc_orch.reactor.journal import Intent, Journal, MemoryJournal, Outcome, StepStatus
from esc_orch.reactor.observe import ConnectorProvider, observe, view_of
from esc_orch.reactor.status import DeploymentStatus, DeploymentTarget, RunOutcome, VmStatus

__all__ = [
    "DEFAULT_RETRY",
    "ConnectorProvider",
    "DeploymentStatus",
    "DeploymentTarget",
    "EventSink",
    "Executor",
    "Intent",
    "Journal",
    "MemoryEventSink",
    "MemoryJournal",
    "Outcome",
    "Reactor",
    "Replan",
    "RunOutcome",
    "StepFailed",
    "StepResult",
    "StepStatus",
    "VmStatus",
    "observe",
    "view_of",
    "vm_alive_message",
    "vm_details",
]
