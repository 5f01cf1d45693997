"""A VIM connector that times and counts every call of the one it wraps (Prometheus).

The daemon builds its connectors with :func:`create_metered_connector`, so each call a
deployment or a connector check makes is observed once, by connector id and call name,
whatever the connector type; connectors themselves know nothing of metrics. Errors are
counted by class (``TemporaryVimError``, ``VimAuthError``...) and raised unchanged.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from esc_orch import metrics
from esc_orch.vim.protocol import Connector, ProgressCallback
from esc_orch.vim.registry import create_connector
from esc_orch.vim.types import (
    Capability,
    ConnectorConfig,
    HostInfo,
    Storage,
    VmChange,
    VmSpec,
    VmState,
)

T = TypeVar("T")


class MeteredConnector:
    """Delegates to ``inner``; records ``esc_orch_vim_call_*`` for each call."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner

    @property
    def config(self) -> ConnectorConfig:
        return self.inner.config

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def __repr__(self) -> str:
        return f"MeteredConnector({self.inner!r})"

    async def _timed(self, call: str, awaitable: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            result = await awaitable
        except Exception as exc:
            metrics.vim_call(
                connector=self.inner.config.id,
                call=call,
                seconds=time.perf_counter() - started,
                error=type(exc).__name__,
            )
            raise
        metrics.vim_call(
            connector=self.inner.config.id, call=call, seconds=time.perf_counter() - started
        )
        return result

    async def describe(self) -> HostInfo:
        return await self._timed("describe", self.inner.describe())

    async def list_vms(self) -> tuple[VmState, ...]:
        return await self._timed("list_vms", self.inner.list_vms())

    async def get_vm(self, *, name: str) -> VmState:
        return await self._timed("get_vm", self.inner.get_vm(name=name))

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        return await self._timed("ensure_vm", self.inner.ensure_vm(spec=spec))

    async def delete_vm(self, *, name: str, keep_disk: bool = False) -> None:
        await self._timed("delete_vm", self.inner.delete_vm(name=name, keep_disk=keep_disk))

    async def power_on(self, *, name: str) -> VmState:
        return await self._timed("power_on", self.inner.power_on(name=name))

    async def power_off(self, *, name: str) -> VmState:
        return await self._timed("power_off", self.inner.power_off(name=name))

    async def reboot(self, *, name: str) -> VmState:
        return await self._timed("reboot", self.inner.reboot(name=name))

    async def copy_disk(
        self,
        *,
        name: str,
        from_storage: Storage,
        to_storage: Storage,
        progress: ProgressCallback | None = None,
    ) -> VmState:
        return await self._timed(
            "copy_disk",
            self.inner.copy_disk(
                name=name, from_storage=from_storage, to_storage=to_storage, progress=progress
            ),
        )

    def watch(self, *, interval: float) -> AsyncIterator[VmChange]:
        return self.inner.watch(interval=interval)

    async def close(self) -> None:
        await self.inner.close()


def create_metered_connector(config: ConnectorConfig) -> Connector:
    """:func:`~esc_orch.vim.registry.create_connector`, metered."""
    return MeteredConnector(create_connector(config))
