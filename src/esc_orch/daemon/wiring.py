"""Where the daemon gets its parts: the SQL datastore, the VIM supervisor and the lifecycle.

``esc-orchd serve`` calls :func:`build_backend` (the one place that chooses the datastore) and
:func:`start_parts`, which gives the supervisor and the lifecycle one shared
:class:`~esc_orch.daemon.connectors.ConnectorPool`. Tests that need another backend pass it
in-process (``serve(backend=...)`` or ``run_server``): such a backend serves NETCONF only.
Nothing read from the environment makes the daemon import code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from esc_orch.daemon.actions import LifecycleActions
from esc_orch.daemon.config import DaemonConfig, LifecycleSettings, VimSettings
from esc_orch.daemon.connectors import ConnectorPool
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.daemon.moves import MoveControls
from esc_orch.daemon.vim_supervisor import VimSupervisor, connectors_of
from esc_orch.model.clock import utc_now
from esc_orch.model.events import EscEvent
from esc_orch.model.schema import ESC_REVISION
from esc_orch.model.semantics import Vocabulary
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.secrets import SecretsError
from esc_orch.vocabulary import installed_vocabulary


class WiringError(Exception):
    """A part the daemon needs is missing or misconfigured."""


def esc_revision() -> str:
    """The revision of ``yang/esc.yang``, for the module capability in our hello."""
    return ESC_REVISION


def build_backend(data_dir: Path, config: DaemonConfig) -> SqlDatastore:
    """The production datastore for ``data_dir`` (SQLite there, or ``[store] url``)."""
    url = config.store.get("url")
    key_file = config.store.get("key_file")  # the secrets key; default in data_dir
    try:
        backend = SqlDatastore.open(
            data_dir=data_dir,
            url=str(url) if url else None,
            key_file=Path(str(key_file)) if key_file else None,
        )
    except SecretsError as exc:
        raise WiringError(f"the secrets key is unusable: {exc}") from None
    backend.set_vocabulary(vocabulary())
    return backend


def vocabulary() -> Vocabulary:
    """What this daemon can run, for the edit-time checks of the datastore."""
    return installed_vocabulary()


def start_vim_supervisor(
    store: SqlDatastore, settings: VimSettings, *, pool: ConnectorPool
) -> tuple[VimSupervisor, asyncio.Task[None]]:
    """Check the VIM connectors of ``store`` in the background, through ``pool``.

    Wires the supervisor to the datastore: commit diffs wake it, its state is served under
    ``opdata/vim_connectors``, its acceptance check refuses groups placed on a dead
    connector, and its VIM_CONNECTION_STATE events go to the durable event log.
    """
    loop = asyncio.get_running_loop()
    events = store.events

    def emit(batch: Sequence[EscEvent]) -> object:
        return loop.run_in_executor(None, events.emit, list(batch))

    supervisor = VimSupervisor(
        emit=emit,
        clock=utc_now,
        pool=pool,
        timeout=settings.check_timeout,
        interval=settings.check_interval,
    )
    supervisor.load(connectors_of(store.running_units("vim_connector").values()))
    store.add_listener(supervisor.on_commit)
    store.add_state_provider(supervisor.opdata)
    store.add_acceptance_check(supervisor.acceptance_errors)
    return supervisor, loop.create_task(supervisor.run(), name="vim-supervisor")


async def start_lifecycle(
    store: SqlDatastore, settings: LifecycleSettings, *, pool: ConnectorPool
) -> LifecycleService:
    """Run deployments for real: returns the started LifecycleService.

    Its commit listener turns deployment changes into reactor runs, its state provider serves
    ``opdata/tenants``, unfinished work is resumed now, and ``service.actions`` is the ESC
    action sink for the NETCONF server.
    """
    service = LifecycleService(datastore=store, settings=settings, pool=pool)
    await service.start()
    service.actions = LifecycleActions(service=service)
    await service.actions.settle_owed(await service.store.records())
    return service


@dataclass
class Parts:
    """What runs beside the NETCONF server when the backend is the SQL datastore."""

    pool: ConnectorPool
    supervisor: VimSupervisor
    supervisor_task: asyncio.Task[None]
    lifecycle: LifecycleService
    #: Our RPCs (eo:confirm-host-down, eo:recheck-vim-connector).
    moves: MoveControls

    async def stop(self) -> None:
        self.supervisor_task.cancel()
        await self.lifecycle.stop()


async def start_parts(store: SqlDatastore, config: DaemonConfig) -> Parts:
    pool = ConnectorPool()
    supervisor, task = start_vim_supervisor(store, config.vim, pool=pool)
    lifecycle = await start_lifecycle(store, config.lifecycle, pool=pool)
    supervisor.on_up = lifecycle.connector_up
    supervisor.confirmations = lifecycle.proof_sources.confirmations
    moves = MoveControls(lifecycle=lifecycle, supervisor=supervisor)
    return Parts(
        pool=pool, supervisor=supervisor, supervisor_task=task, lifecycle=lifecycle, moves=moves
    )
