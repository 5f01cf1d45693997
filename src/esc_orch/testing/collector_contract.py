"""The KPI collector conformance suite: the rules of the collector protocol as tests.

Use it from any collector's test suite (ours or a third party's)::

    from esc_orch.testing.collector_contract import CollectorContract, CollectorHarness

    class MyHarness(CollectorHarness):
        async def collector(self) -> Collector: ...
        def reachable(self, key: str) -> Target: ...

    class TestMyCollector(CollectorContract):
        @pytest.fixture
        async def harness(self):
            h = MyHarness()
            yield h
            await h.aclose()

Hooks returning ``None`` (no way to make an unanswering or a refused target here) skip their
cases rather than pass them, so a report shows what was not checked.
"""

from __future__ import annotations

import asyncio

import pytest

from esc_orch.monitor.collectors.protocol import Collector
from esc_orch.monitor.types import MetricKind, Sample, Target


class CollectorHarness:
    """How the suite gets a collector and targets; override what your collector can do."""

    #: How many distinct reachable targets one batch carries in the "many" case.
    many: int = 50

    def __init__(self) -> None:
        self._opened: list[Collector] = []

    async def collector(self) -> Collector:
        raise NotImplementedError

    async def open(self) -> Collector:
        c = await self.collector()
        self._opened.append(c)
        return c

    def reachable(self, key: str, index: int = 0) -> Target:
        """A target whose measurement succeeds (its condition holds)."""
        raise NotImplementedError

    def unreachable(self, key: str) -> Target | None:
        """A target that is measured as failing (e.g. an address that never answers)."""
        return None

    def refused(self, key: str) -> Target | None:
        """A target the collector must refuse without measuring (an error sample)."""
        return None

    def holds(self, kind: MetricKind, value: float) -> bool:
        """Whether a value of a reachable target reads as success."""
        return value > 50 if kind is MetricKind.THRESHOLD else value != 0

    async def aclose(self) -> None:
        for c in self._opened:
            await c.aclose()


class CollectorContract:
    """Subclass with a ``harness`` fixture yielding a :class:`CollectorHarness`."""

    async def test_declares_a_type_and_a_kind(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        assert isinstance(c, Collector)
        assert isinstance(c.type_name, str) and c.type_name
        assert isinstance(c.kind, MetricKind)

    async def test_an_empty_batch_gives_nothing(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        assert dict(await c.collect([])) == {}

    async def test_a_reachable_target_is_measured_and_holds(
        self, harness: CollectorHarness
    ) -> None:
        c = await harness.open()
        got = await c.collect([harness.reachable("a")])
        assert set(got) == {"a"}
        sample = got["a"]
        assert isinstance(sample, Sample) and sample.error is None and sample.value is not None
        assert harness.holds(c.kind, sample.value)

    async def test_an_unanswering_target_is_a_value_that_fails(
        self, harness: CollectorHarness
    ) -> None:
        target = harness.unreachable("u")
        if target is None:
            pytest.skip("the harness has no unanswering target here")
        c = await harness.open()
        got = await c.collect([target])
        assert got["u"].error is None and got["u"].value is not None
        assert not harness.holds(c.kind, got["u"].value)

    async def test_a_refused_target_is_an_error_sample(self, harness: CollectorHarness) -> None:
        target = harness.refused("r")
        if target is None:
            pytest.skip("the harness has no refused target")
        c = await harness.open()
        got = await c.collect([target])
        assert got["r"].value is None and got["r"].error

    async def test_every_target_answered_by_key_and_nothing_else(
        self, harness: CollectorHarness
    ) -> None:
        c = await harness.open()
        targets = [harness.reachable("a", 0), harness.reachable("b", 1)]
        for extra in (harness.unreachable("u"), harness.refused("r")):
            if extra is not None:
                targets.append(extra)
        got = await c.collect(targets)
        assert set(got) == {t.key for t in targets}
        assert all(harness.holds(c.kind, got[k].value or 0) for k in ("a", "b"))

    async def test_many_targets_in_one_batch(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        targets = [harness.reachable(f"t{i}", i) for i in range(harness.many)]
        got = await c.collect(targets)
        assert set(got) == {t.key for t in targets}
        failed = [
            k for k, s in got.items() if s.value is None or not harness.holds(c.kind, s.value)
        ]
        assert failed == []

    async def test_the_same_address_twice_in_a_batch(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        one = harness.reachable("x", 0)
        two = Target(key="y", vm_name=one.vm_name, address=one.address, properties=one.properties)
        got = await c.collect([one, two])
        assert set(got) == {"x", "y"}
        assert all(harness.holds(c.kind, s.value or 0) for s in got.values())

    async def test_concurrent_batches_do_not_mix(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        first = [harness.reachable(f"p{i}", i) for i in range(5)]
        second = [harness.reachable(f"q{i}", i) for i in range(5)]
        extra = harness.unreachable("qu")
        if extra is not None:
            second.append(extra)
        a, b = await asyncio.gather(c.collect(first), c.collect(second))
        assert set(a) == {t.key for t in first} and set(b) == {t.key for t in second}
        assert all(harness.holds(c.kind, s.value or 0) for s in a.values())
        if extra is not None:
            assert not harness.holds(c.kind, b["qu"].value or 0)

    async def test_close_is_idempotent(self, harness: CollectorHarness) -> None:
        c = await harness.open()
        await c.collect([harness.reachable("a")])
        await c.aclose()
        await c.aclose()
