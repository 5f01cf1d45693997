"""Carrying out the rule actions the decision core fired: log, scripts, unsupported ones.

``recover autohealing`` is not here: it becomes a
:class:`~esc_orch.monitor.decision.RecoveryRequest` for the recovery policy. A script runs
from the configured scripts directory with the event's facts in its environment
(``ESC_EVENT_NAME``, ``ESC_EDGE``, ``ESC_VM_NAME``, ``ESC_TENANT``, ``ESC_DEPLOYMENT``,
``ESC_VM_GROUP``, ``ESC_VIM_ID``, ``ESC_KPI_VALUE``), a time limit, and its output logged. A
missing or failing script, or an action esc-orch does not implement, is a
:class:`RuleOutcome` to report (event and opdata), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from esc_orch.monitor.decision import RunAction
from esc_orch.monitor.scripts import ScriptResult, resolve, run_script
from esc_orch.monitor.types import RuleActionKind, VmWatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleOutcome:
    vm_name: str
    event_name: str
    action_text: str
    kind: RuleActionKind
    ok: bool
    supported: bool = True
    script: ScriptResult | None = None

    @property
    def message(self) -> str:
        """The sentence a person reads (rendered here only)."""
        what = f"rule {self.event_name} {self.action_text!r} on VM {self.vm_name}"
        if not self.supported:
            return f"{what}: action not supported by esc-orch yet"
        if self.script is not None:
            return f"{what}: {self.script.message}"
        return f"{what}: done"


class RuleRunner:
    def __init__(
        self, *, scripts_dir: Path | None = None, time_limit: float = 30.0, max_parallel: int = 16
    ) -> None:
        self.scripts_dir = scripts_dir
        self.time_limit = time_limit
        self._limit = asyncio.Semaphore(max_parallel)  # scripts at once, however many fire

    def facts(self, decision: RunAction, watch: VmWatch) -> dict[str, str]:
        return {
            "ESC_EVENT_NAME": decision.event_name,
            "ESC_EDGE": str(decision.edge),
            "ESC_VM_NAME": watch.vm_name,
            "ESC_TENANT": watch.tenant,
            "ESC_DEPLOYMENT": watch.deployment,
            "ESC_VM_GROUP": watch.group,
            "ESC_VIM_ID": watch.connector_id,
            "ESC_KPI_VALUE": "" if decision.value is None else f"{decision.value:g}",
        }

    async def run(self, decision: RunAction, watch: VmWatch) -> RuleOutcome:
        action = decision.action

        def outcome_of(
            *, ok: bool, supported: bool = True, script: ScriptResult | None = None
        ) -> RuleOutcome:
            return RuleOutcome(
                vm_name=watch.vm_name, event_name=decision.event_name,
                action_text=action.text or f"{action.edge} {action.argument}",
                kind=action.kind, ok=ok, supported=supported, script=script,
            )  # fmt: skip

        match action.kind:
            case RuleActionKind.LOG:
                log.info(
                    "rule %s %s: VM %s (deployment %s/%s) value %s",
                    decision.event_name, decision.edge, watch.vm_name, watch.tenant,
                    watch.deployment, decision.value,
                )  # fmt: skip
                return outcome_of(ok=True)
            case RuleActionKind.ALIVE_NOTIFICATION:
                return outcome_of(ok=True)
            case RuleActionKind.SCRIPT:
                path, problem = resolve(self.scripts_dir, action.argument)
                if path is None:
                    assert problem is not None
                    outcome = outcome_of(ok=False, script=problem)
                    log.warning("%s", outcome.message)
                    return outcome
                async with self._limit:
                    result = await run_script(
                        path, facts=self.facts(decision, watch), time_limit=self.time_limit
                    )
                outcome = outcome_of(ok=result.ok, script=result)
                level = logging.INFO if result.ok else logging.WARNING
                log.log(
                    level, "%s; stdout=%r stderr=%r", outcome.message, result.stdout, result.stderr
                )
                return outcome
            case _:
                outcome = outcome_of(ok=False, supported=False)
                log.warning("%s", outcome.message)
                return outcome
