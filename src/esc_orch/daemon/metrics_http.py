"""The Prometheus endpoint of the daemon (``[metrics]``), and the store's share of metrics.

Off unless ``[metrics] port`` (or ``--metrics-port``) is set; it listens on 127.0.0.1 unless
``[metrics] bind`` says otherwise. It serves ``GET /metrics`` in the text exposition format
from :data:`esc_orch.metrics.REGISTRY`, on the daemon's event loop (aiohttp, already a
dependency for the CSP connector): no extra thread, and it stops with the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from esc_orch import metrics
from esc_orch.daemon.config import MetricsSettings
from esc_orch.model.diff import ConfigDiff
from esc_orch.model.events import LoggedEvent
from esc_orch.store.datastore import SqlDatastore

log = logging.getLogger(__name__)


class MetricsServer:
    """``GET /metrics`` on ``bind:port`` until :meth:`stop`."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port

    async def stop(self) -> None:
        await self._runner.cleanup()


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def start_metrics_server(settings: MetricsSettings) -> MetricsServer | None:
    """Listen if configured; the server (with its actual port, for port 0) or None."""
    if settings.port is None:
        return None
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind, settings.port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    port = settings.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    log.info("metrics listening", extra={"address": settings.bind, "port": port})
    return MetricsServer(runner, port)


def set_build_info() -> None:
    try:
        release = version("esc-orch")
    except PackageNotFoundError:
        release = "unknown"
    metrics.BUILD_INFO.info({"version": release})


def instrument_store(store: SqlDatastore) -> None:
    """Count commits of running and events written to the durable log."""

    def committed(_diff: ConfigDiff) -> None:
        metrics.CONFIG_COMMITS.inc()

    def emitted(batch: Sequence[LoggedEvent]) -> None:
        metrics.events_emitted(event.event_type for event in batch)

    store.add_listener(committed)
    store.events.add_listener(emitted)
