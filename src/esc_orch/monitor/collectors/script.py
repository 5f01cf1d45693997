"""Script collectors: a custom metric's script, run once per target and poll, with a timeout.

The script gets the target's facts and properties in its environment (``ESC_VM_NAME``,
``ESC_TARGET_ADDRESS``, ``ESC_METRIC``, ``ESC_PROP_<NAME>``) and the properties as
``name=value`` arguments too. Success/failure metrics read the exit code (a timeout is a
failure: a health check that hangs is not healthy); threshold metrics read the number on the
last line of stdout (anything else, or a timeout, is an error sample: nothing was measured).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from esc_orch.monitor.collectors.protocol import CollectorContext
from esc_orch.monitor.definitions import MetricDefinition
from esc_orch.monitor.scripts import ScriptOutcome, run_script
from esc_orch.monitor.types import MetricKind, Sample, Target

log = logging.getLogger(__name__)


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


class ScriptCollector:
    def __init__(self, *, context: CollectorContext) -> None:
        if context.definition is None:
            raise ValueError("a script collector needs a metric definition")
        self.definition: MetricDefinition = context.definition
        self._limit = asyncio.Semaphore(int(context.settings.get("max_parallel", "8")))

    @property
    def type_name(self) -> str:
        return self.definition.name

    @property
    def kind(self) -> MetricKind:
        return self.definition.kind

    async def _one(self, target: Target) -> Sample:
        props = {**self.definition.properties, **target.properties}
        facts = {
            "ESC_METRIC": self.definition.name,
            "ESC_VM_NAME": target.vm_name,
            "ESC_TARGET_ADDRESS": target.address or "",
            **{f"ESC_PROP_{_env_name(k)}": v for k, v in props.items()},
        }
        args = [f"{k}={v}" for k, v in sorted(props.items())]
        async with self._limit:
            result = await run_script(
                self.definition.script, name=self.definition.name, args=args, facts=facts,
                time_limit=self.definition.timeout,
            )  # fmt: skip
        if result.outcome not in (ScriptOutcome.OK, ScriptOutcome.FAILED):
            if self.kind is MetricKind.SUCCESS_FAILURE and result.outcome is ScriptOutcome.TIMEOUT:
                return Sample(value=0)
            log.warning(
                "metric %s for %s: %s", self.definition.name, target.vm_name, result.message
            )
            return Sample(error=result.message)
        if self.kind is MetricKind.SUCCESS_FAILURE:
            return Sample(value=1 if result.ok else 0)
        if not result.ok:
            return Sample(error=result.message)
        lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
        try:
            return Sample(value=float(lines[-1]))
        except (IndexError, ValueError):
            return Sample(error=f"script {self.definition.name} printed no number")

    async def collect(self, targets: Sequence[Target]) -> Mapping[str, Sample]:
        samples = await asyncio.gather(*(self._one(t) for t in targets))
        return {t.key: s for t, s in zip(targets, samples, strict=True)}

    async def aclose(self) -> None:
        return None
