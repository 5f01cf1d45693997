"""Where the daemon gets its parts: the SQL datastore, the VIM supervisor and the lifecycle.

``esc-orchd serve`` calls :func:`build_backend` (the one place that chooses the datastore) and
:func:`start_parts`, which gives the supervisor and the lifecycle one shared
:class:`~esc_orch.daemon.connectors.ConnectorPool`. Tests that need another backend pass it
in-process (``serve(backend=...)`` or ``run_server``): such a backend serves NETCONF only.
Nothing read from the environment makes the daemon import code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from esc_orch.daemon.actions import LifecycleActions
from esc_orch.daemon.config import DaemonConfig, LifecycleSettings, MonitorSettings, VimSettings
from esc_orch.daemon.connectors import ConnectorPool
from esc_orch.daemon.lifecycle import LifecycleService
from esc_orch.daemon.monitoring import DaemonMonitoring
from esc_orch.daemon.moves import MoveControls
from esc_orch.daemon.vim_supervisor import VimSupervisor, connectors_of, last_reported
from esc_orch.model.clock import utc_now
from esc_orch.model.config import VmGroup
from esc_orch.model.events import EscEvent, EventType
from esc_orch.model.schema import ESC_REVISION
from esc_orch.model.semantics import Vocabulary
from esc_orch.monitor.collectors.registry import builtin_types
from esc_orch.monitor.definitions import DefinitionError, MetricDefinition, load_definitions
from esc_orch.monitor.scripts import known_rule_scripts
from esc_orch.monitor.watch import check_group
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.datastore_publish import Holding
from esc_orch.store.secrets import SecretsError
from esc_orch.vocabulary import installed_vocabulary

log = logging.getLogger(__name__)


class WiringError(Exception):
    """A part the daemon needs is missing or misconfigured."""


def esc_revision() -> str:
    """The revision of ``yang/esc.yang``, for the module capability in our hello."""
    return ESC_REVISION


def build_backend(data_dir: Path, config: DaemonConfig) -> SqlDatastore:
    """The production datastore for ``data_dir`` (SQLite there, or ``[store] url``)."""
    definitions = metric_definitions(config.monitor)  # refuse to start on a bad one
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
    settings = config.monitor if config.monitor.enabled else None
    backend.set_vocabulary(vocabulary(settings, definitions))
    # NETCONF commits first: the lifecycle learns of a change once the edits stop coming
    # ([lifecycle] publish_quiet, publish_max_delay; store/datastore_publish.py).
    backend.defer_publication(
        Holding(
            quiet=config.lifecycle.publish_quiet,
            max_delay=config.lifecycle.publish_max_delay,
        )
    )
    return backend


def metric_definitions(settings: MonitorSettings) -> dict[str, MetricDefinition]:
    """The custom metrics of ``[monitor] metrics_dir``; a bad definition stops the start."""
    try:
        return load_definitions(settings.metrics_dir, reserved=builtin_types())
    except DefinitionError as exc:
        raise WiringError(f"[monitor] metrics_dir: {exc}") from exc


def vocabulary(
    settings: MonitorSettings | None = None,
    definitions: Mapping[str, MetricDefinition] | None = None,
) -> Vocabulary:
    """What this daemon can run, for the edit-time checks of the datastore.

    Collector types: those installed (:func:`esc_orch.vocabulary.installed_vocabulary`) and
    the custom metric definitions; fence agent types: those installed.
    With ``settings``, every vm_group's monitoring goes through
    :func:`esc_orch.monitor.watch.check_group`: known collector types, known rule scripts
    (``[monitor] scripts_dir``, read at each check), probe targets inside ``allowed_networks``.
    """
    installed = installed_vocabulary()
    types = installed.collector_types | frozenset(definitions or {})
    fence_types, fence_check = installed.fence_types, installed.fence_check
    if settings is None:
        return Vocabulary(collector_types=types, fence_types=fence_types, fence_check=fence_check)
    allowed = settings.allowed
    scripts_dir = settings.scripts_dir

    def check(group: VmGroup) -> list[tuple[str, str]]:
        problems = check_group(
            group, known_types=types, known_scripts=known_rule_scripts(scripts_dir),
            allowed=allowed,
        )  # fmt: skip
        for p in problems:
            log.info("vm_group %s refused: %s: %s", group.name, p.path, p.message)
        return [(p.path, p.message) for p in problems]

    return Vocabulary(
        collector_types=types,
        rule_action=lambda _a: True,
        monitoring_check=check,
        fence_types=fence_types,
        fence_check=fence_check,
    )


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
        failed_interval=settings.down_check_interval,
    )
    # What clients were last told of each connector: a restart reports only what changed.
    told = last_reported(events.newest_of_type(EventType.VIM_CONNECTION_STATE))
    supervisor.load(connectors_of(store.running_units("vim_connector").values()), reported=told)
    store.add_listener(supervisor.on_commit)
    store.add_state_provider(supervisor.opdata)
    store.add_acceptance_check(supervisor.acceptance_errors)
    return supervisor, loop.create_task(supervisor.run(), name="vim-supervisor")


async def start_lifecycle(
    store: SqlDatastore,
    settings: LifecycleSettings,
    *,
    pool: ConnectorPool,
    monitor: MonitorSettings | None = None,
    check_timeout: float = 10.0,
) -> tuple[LifecycleService, DaemonMonitoring | None]:
    """Run deployments for real: the started LifecycleService (and its monitoring).

    Its commit listener turns deployment changes into reactor runs, its state provider serves
    ``opdata/tenants``, unfinished work is resumed now, and ``service.actions`` is the ESC
    action sink for the NETCONF server. With ``monitor``, KPI monitoring and recovery
    (daemon/monitoring.py) are hooked in before the first run and started after resuming.
    """
    service = LifecycleService(datastore=store, settings=settings, pool=pool)
    monitoring = None
    if monitor is not None:
        monitoring = DaemonMonitoring(
            lifecycle=service, settings=monitor, definitions=metric_definitions(monitor),
            check_timeout=check_timeout,
        )  # fmt: skip
        monitoring.install()
    await service.start()
    if monitoring is not None:
        await monitoring.start()
    service.actions = LifecycleActions(service=service, monitoring=monitoring)
    await service.actions.settle_owed(await service.store.records())
    return service, monitoring


@dataclass
class Parts:
    """What runs beside the NETCONF server when the backend is the SQL datastore."""

    pool: ConnectorPool
    supervisor: VimSupervisor
    supervisor_task: asyncio.Task[None]
    lifecycle: LifecycleService
    #: Our RPCs (eo:confirm-host-down, eo:recheck-vim-connector).
    moves: MoveControls
    monitoring: DaemonMonitoring | None = None

    async def stop(self) -> None:
        self.supervisor_task.cancel()
        if self.monitoring is not None:
            await self.monitoring.stop()
        await self.lifecycle.stop()


async def start_parts(store: SqlDatastore, config: DaemonConfig) -> Parts:
    pool = ConnectorPool()
    supervisor, task = start_vim_supervisor(store, config.vim, pool=pool)
    lifecycle, monitoring = await start_lifecycle(
        store, config.lifecycle, pool=pool,
        monitor=config.monitor if config.monitor.enabled else None,
        check_timeout=config.vim.check_timeout,
    )  # fmt: skip
    supervisor.on_up = lifecycle.connector_up
    lifecycle.reactor.on_silent = supervisor.suspect  # a run found a host silent: check it
    supervisor.confirmations = lifecycle.proof_sources.confirmations
    moves = MoveControls(lifecycle=lifecycle, supervisor=supervisor)
    return Parts(
        pool=pool, supervisor=supervisor, supervisor_task=task, lifecycle=lifecycle,
        moves=moves, monitoring=monitoring,
    )  # fmt: skip
