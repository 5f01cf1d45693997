"""An in-memory collector: values set by the test, per address (or per VM when no address).

The executable version of the collector rules (:mod:`esc_orch.monitor.collectors.protocol`):
it answers every target by key, turns "unknown" targets into a value of 0 (an unanswered
probe), errors into error samples, and records every batch it was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from esc_orch.monitor.types import MetricKind, Sample, Target


class FakeCollector:
    def __init__(self, *, type_name: str = "FAKE", kind: MetricKind = MetricKind.THRESHOLD) -> None:
        self._type_name = type_name
        self._kind = kind
        self.values: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.batches: list[tuple[Target, ...]] = []
        self.closed = False

    @property
    def type_name(self) -> str:
        return self._type_name

    @property
    def kind(self) -> MetricKind:
        return self._kind

    def set(self, where: str, value: float | None = None, *, error: str | None = None) -> None:
        """``where`` is an address, or a VM name for targets without one."""
        self.values.pop(where, None)
        self.errors.pop(where, None)
        if error is not None:
            self.errors[where] = error
        elif value is not None:
            self.values[where] = value

    async def collect(self, targets: Sequence[Target]) -> Mapping[str, Sample]:
        self.batches.append(tuple(targets))
        out: dict[str, Sample] = {}
        for t in targets:
            where = t.address or t.vm_name
            if where in self.errors:
                out[t.key] = Sample(error=self.errors[where])
            else:
                out[t.key] = Sample(value=self.values.get(where, 0.0))
        return out

    async def aclose(self) -> None:
        self.closed = True
