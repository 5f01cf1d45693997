"""Backoff policy and the retry loop under a recording sleep; the pure state diff."""

from __future__ import annotations

import pytest

from esc_orch.vim import PermanentVimError, PowerState, Storage, TemporaryVimError, VmState
from esc_orch.vim.retry import RetryPolicy, with_retries
from esc_orch.vim.watch import diff_states


def test_delay_doubles_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=3.0)
    assert [policy.delay(attempt=n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(attempt=1, retry_after=2.0) == 2.0


async def test_retries_temporary_errors_only() -> None:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TemporaryVimError("503", retry_after=0.0)
        return "ok"

    policy = RetryPolicy(attempts=4, base_delay=0.1)
    assert await with_retries(flaky, policy=policy, sleep=sleep) == "ok"
    assert sleeps == [0.1, 0.2]

    async def permanent() -> str:
        raise PermanentVimError("400")

    sleeps.clear()
    with pytest.raises(PermanentVimError):
        await with_retries(permanent, policy=policy, sleep=sleep)
    assert sleeps == []

    async def always() -> str:
        raise TemporaryVimError("503", retry_after=0.0)

    with pytest.raises(TemporaryVimError):
        await with_retries(always, policy=policy, sleep=sleep)
    assert sleeps == [0.1, 0.2, 0.4]


def _vm(name: str, power: PowerState = PowerState.RUNNING) -> VmState:
    return VmState(
        name=name,
        power=power,
        host="h",
        storage=Storage.LOCAL,
        vim_id=name,
        vcpus=1,
        memory_mb=1,
        disk_mb=1,
        image="i",
    )


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({}, {"a": _vm("a")}, [("added", "a")]),
        ({"a": _vm("a")}, {}, [("removed", "a")]),
        ({"a": _vm("a")}, {"a": _vm("a", PowerState.STOPPED)}, [("changed", "a")]),
        ({"a": _vm("a")}, {"a": _vm("a")}, []),
        ({"b": _vm("b")}, {"a": _vm("a")}, [("added", "a"), ("removed", "b")]),
    ],
)
def test_diff_states(
    before: dict[str, VmState], after: dict[str, VmState], expected: list[tuple[str, str]]
) -> None:
    assert [(c.kind.value, c.name) for c in diff_states(before, after)] == expected
