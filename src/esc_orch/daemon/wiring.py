"""Where the daemon gets its parts: the one place that chooses the datastore implementation.

``esc-orchd serve`` calls :func:`build_backend`; tests inject an in-memory backend instead
(``serve(backend=...)`` in-process, or ``ESC_ORCHD_TEST_BACKEND=module:factory`` for a
subprocess), so the NETCONF server is exercised without the SQL store.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from esc_orch.daemon.config import DaemonConfig, LifecycleSettings, VimSettings
from esc_orch.daemon.retention import PrunableEventSource
from esc_orch.daemon.vim_supervisor import VimSupervisor, connectors_of, utc_now
from esc_orch.model.events import EscEvent
from esc_orch.northbound.backend import ConfigBackend

TEST_BACKEND_ENV = "ESC_ORCHD_TEST_BACKEND"

# Announced in the hello until the model layer's constant is importable.
PLACEHOLDER_ESC_REVISION = "1970-01-01"


class WiringError(Exception):
    """A part the daemon needs is missing or misconfigured."""


def esc_revision() -> str:
    """The revision of ``yang/esc.yang``, for the module capability in our hello."""
    try:
        from esc_orch.model.schema import ESC_REVISION  # noqa: PLC0415
    except ImportError:
        return PLACEHOLDER_ESC_REVISION
    return str(ESC_REVISION)


def build_backend(data_dir: Path, config: DaemonConfig) -> ConfigBackend:
    """The production datastore for ``data_dir``."""
    test_factory = os.environ.get(TEST_BACKEND_ENV)
    if test_factory:
        return _load_test_backend(test_factory, data_dir, config)
    try:
        # Imported by name so the northbound/daemon type check does not depend on the store.
        datastore = importlib.import_module("esc_orch.store.datastore")
    except ImportError as exc:
        raise WiringError(
            f"the SQL datastore (esc_orch.store.datastore) is unavailable: {exc}"
        ) from None
    url = config.store.get("url")
    key_file = config.store.get("key_file")  # the secrets key; default in data_dir
    secrets = importlib.import_module("esc_orch.store.secrets")
    try:
        backend = datastore.SqlDatastore.open(
            data_dir=data_dir,
            url=str(url) if url else None,
            key_file=Path(str(key_file)) if key_file else None,
        )
    except secrets.SecretsError as exc:
        raise WiringError(f"the secrets key is unusable: {exc}") from None
    return cast(ConfigBackend, backend)


def _load_test_backend(spec: str, data_dir: Path, config: DaemonConfig) -> ConfigBackend:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise WiringError(f"{TEST_BACKEND_ENV} must look like 'package.module:factory'")
    factory = getattr(importlib.import_module(module_name), attr)
    return cast(ConfigBackend, factory(data_dir, config))


def event_log_of(backend: ConfigBackend) -> PrunableEventSource | None:
    """The durable event log that comes with ``backend`` (``SqlDatastore.events``), if any.

    Test backends without one serve NETCONF without notifications.
    """
    events = getattr(backend, "events", None)
    return cast(PrunableEventSource, events) if events is not None else None


def start_vim_supervisor(
    backend: ConfigBackend, settings: VimSettings
) -> asyncio.Task[None] | None:
    """Check the VIM connectors of ``backend`` in the background (a SqlDatastore only).

    Wires the supervisor to the datastore: commit diffs wake it, its state is served under
    ``opdata/vim_connectors``, its acceptance check refuses groups placed on a dead
    connector, and its VIM_CONNECTION_STATE events go to the durable event log.
    """
    needed = ("add_listener", "add_state_provider", "add_acceptance_check", "running_units")
    events = getattr(backend, "events", None)
    if events is None or not all(hasattr(backend, name) for name in needed):
        return None
    store = cast(Any, backend)
    loop = asyncio.get_running_loop()

    def emit(batch: Sequence[EscEvent]) -> object:
        return loop.run_in_executor(None, events.emit, list(batch))

    supervisor = VimSupervisor(
        emit=emit,
        clock=utc_now,
        timeout=settings.check_timeout,
        interval=settings.check_interval,
    )
    supervisor.load(connectors_of(store.running_units("vim_connector")))
    store.add_listener(supervisor.on_commit)
    store.add_state_provider(supervisor.opdata)
    store.add_acceptance_check(supervisor.acceptance_errors)
    return loop.create_task(supervisor.run(), name="vim-supervisor")


async def start_lifecycle(backend: ConfigBackend, settings: LifecycleSettings) -> Any | None:
    """Run deployments for real (a SqlDatastore only): returns the started LifecycleService.

    Its commit listener turns deployment changes into reactor runs, its state provider serves
    ``opdata/tenants``, unfinished work is resumed now, and ``service.actions`` is the ESC
    action sink for the NETCONF server. Test backends without a store get no lifecycle.
    """
    needed = ("add_listener", "add_state_provider", "running_units", "engine", "events")
    if not all(hasattr(backend, name) for name in needed):
        return None
    # Imported here so daemons on a test backend never load the reactor and its store.
    from esc_orch.daemon.actions import LifecycleActions  # noqa: PLC0415
    from esc_orch.daemon.lifecycle import LifecycleService  # noqa: PLC0415

    service = LifecycleService(datastore=backend, settings=settings)
    await service.start()
    service.actions = LifecycleActions(service=service)
    await service.actions.settle_owed(await service.store.memories())
    return service
