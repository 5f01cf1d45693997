"""Polling turned into change events, shared by connectors whose VIM cannot push them.

:func:`diff_states` is pure (table-testable); :func:`poll_changes` is the thin await loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from esc_orch.vim.errors import TemporaryVimError
from esc_orch.vim.types import VmChange, VmChangeKind, VmState

Sleep = Callable[[float], Awaitable[None]]


def diff_states(
    before: Mapping[str, VmState], after: Mapping[str, VmState]
) -> tuple[VmChange, ...]:
    """The changes that turn ``before`` into ``after``, sorted by VM name."""
    changes: list[VmChange] = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            changes.append(VmChange(kind=VmChangeKind.ADDED, name=name, before=None, after=new))
        elif old is not None and new is None:
            changes.append(VmChange(kind=VmChangeKind.REMOVED, name=name, before=old, after=None))
        elif old != new:
            changes.append(VmChange(kind=VmChangeKind.CHANGED, name=name, before=old, after=new))
    return tuple(changes)


async def poll_changes(
    *,
    list_vms: Callable[[], Awaitable[tuple[VmState, ...]]],
    interval: float,
    sleep: Sleep,
) -> AsyncIterator[VmChange]:
    """Poll ``list_vms`` forever and yield what changed; temporary errors skip a round."""
    seen: dict[str, VmState] = {}
    while True:
        try:
            current = {vm.name: vm for vm in await list_vms()}
        except TemporaryVimError as exc:
            await sleep(max(interval, exc.retry_after))
            continue
        for change in diff_states(seen, current):
            yield change
        seen = current
        await sleep(interval)
        await asyncio.sleep(0)  # an instant (fake) sleep must still let others run
