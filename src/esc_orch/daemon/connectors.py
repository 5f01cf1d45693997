"""The daemon's one pool of VIM connectors, shared by the VIM supervisor and the reactor.

A ``vim_connector`` in the running configuration becomes one long-lived connector object
(built through the ``esc_orch.vim_connectors`` entry points), used by every part that talks to
that VIM: the reactor's steps and observations, and the supervisor's health checks
(:mod:`esc_orch.daemon.vim_supervisor`, which keeps the health truth). A configuration change
replaces the object; configuring the same settings again changes nothing, so both commit
listeners may call :meth:`ConnectorPool.configure`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from esc_orch.model.config import VimConnector as ConnectorModel
from esc_orch.model.vim import ConnectorConfig, Credentials
from esc_orch.vim.metered import create_metered_connector as create_connector
from esc_orch.vim.protocol import Connector

ConnectorFactory = Callable[[ConnectorConfig], Connector]


def connector_config(model: ConnectorModel) -> ConnectorConfig:
    """The connector's runtime configuration from its YANG configuration.

    Credentials: the first user that has a ``password`` credential property.
    """
    credentials = None
    for user in model.users.user:
        password = user.credentials.properties.get("password")
        if password is not None:
            credentials = Credentials(user=user.id, password=password)
            break
    properties = {p.name: p.value or "" for p in model.properties.property}
    return ConnectorConfig(
        id=model.id, type=model.type, properties=properties, credentials=credentials
    )


class ConnectorPool:
    """One long-lived connector per configured VIM connector id (the reactor's provider)."""

    def __init__(self, *, factory: ConnectorFactory = create_connector) -> None:
        self._factory = factory
        self._configs: dict[str, ConnectorConfig] = {}
        self._live: dict[str, Connector] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def configure(self, connector_id: str, model: ConnectorModel | None) -> None:
        """A connector was created, changed or (``None``) deleted: drop the old instance."""
        config = connector_config(model) if model is not None else None
        if config is not None and self._configs.get(connector_id) == config:
            return  # the same settings: keep the connector (and its connections)
        old = self._live.pop(connector_id, None)
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if config is None:
            self._configs.pop(connector_id, None)
        else:
            self._configs[connector_id] = config

    def config(self, connector_id: str) -> ConnectorConfig | None:
        """The settings in force (the same object until they change)."""
        return self._configs.get(connector_id)

    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._configs))

    def __call__(self, connector_id: str) -> Connector:
        """The connector of ``connector_id``; LookupError when none is configured."""
        live = self._live.get(connector_id)
        if live is None:
            config = self._configs.get(connector_id)
            if config is None:
                raise LookupError(f"no VIM connector {connector_id!r} is configured")
            live = self._live[connector_id] = self._factory(config)
        return live

    async def close(self) -> None:
        live, self._live = list(self._live.values()), {}
        for connector in live:
            with contextlib.suppress(Exception):
                await connector.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
