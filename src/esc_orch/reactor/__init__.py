"""Carrying plans out: the lifecycle engine between the configuration and the VIMs.

:class:`Reactor` converges each deployment to its :class:`DeploymentTarget` through VIM
connectors, re-planning after every step with :func:`esc_orch.reconcile.plan`. It keeps one
:class:`~esc_orch.model.record.DeploymentRecord` per deployment, writes each step to a
:class:`~esc_orch.model.ports.Journal` (intent before, outcome after, each with the record)
and reports escEvents to an :class:`~esc_orch.model.ports.EventSink`; the daemon supplies the
durable ones (the store), tests the in-memory ones here.
"""

from esc_orch.model.ports import EventSink, Intent, Journal, Outcome, StepStatus
from esc_orch.reactor.engine import DEFAULT_RETRY, Reactor
from esc_orch.reactor.events import vm_alive_message, vm_details
from esc_orch.reactor.execute import Executor, Replan, StepFailed, StepResult
from esc_orch.reactor.journal import MemoryEventSink, MemoryJournal
from esc_orch.reactor.observe import ConnectorProvider, observe, view_of
from esc_orch.reactor.status import DeploymentTarget, RunOutcome

__all__ = [
    "DEFAULT_RETRY",
    "ConnectorProvider",
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
    "observe",
    "view_of",
    "vm_alive_message",
    "vm_details",
]
