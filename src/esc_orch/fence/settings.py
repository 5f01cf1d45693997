"""A fence agent's configuration from ``eo:fence_agent``, and what makes one unusable.

The configuration (the model's :class:`~esc_orch.model.config.FenceAgentSettings`, our augment
of ESC's vim_connector) becomes the :class:`~esc_orch.fence.types.FenceAgentConfig` an agent
takes in one place, for the daemon and for the edit-time checks alike. An agent class may
declare ``config_problems(config) -> list[(setting, sentence)]`` (a static method): what its
configuration alone shows is wrong (a missing url, no credentials). The edit-time checks call
it, so such a configuration is refused when it is written rather than when a host must be
fenced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from esc_orch.fence.errors import UnknownFenceAgentType
from esc_orch.fence.registry import fence_agent_class
from esc_orch.fence.types import FenceAgentConfig
from esc_orch.model.config import FenceAgentSettings
from esc_orch.model.vim import Credentials

ProblemCheck = Callable[[FenceAgentConfig], Iterable[tuple[str, str]]]


def agent_config(
    *, connector_id: str, settings: FenceAgentSettings
) -> tuple[FenceAgentConfig, str]:
    """The agent configuration of ``connector_id``'s host, and the host name it must report.

    ``properties`` are the container's ``properties`` with ``url``, ``timeout`` and
    ``host_name`` (the ``host`` leaf, default the connector id) from its leaves, which win over
    a same-named property; the credentials are ``username``/``password`` when both are set.
    """
    host = settings.host or connector_id
    credentials = None
    if settings.username is not None and settings.password is not None:
        credentials = Credentials(user=settings.username, password=settings.password)
    properties = {p.name: p.value or "" for p in settings.properties.property}
    properties.update(timeout=str(settings.timeout), host_name=host)
    if settings.url is not None:
        properties["url"] = settings.url
    config = FenceAgentConfig(
        id=f"{connector_id}-fence",
        type=settings.type,
        properties=properties,
        credentials=credentials,
    )
    return config, host


def settings_problems(connector_id: str, settings: FenceAgentSettings) -> list[tuple[str, str]]:
    """(setting, sentence) for what the agent type says is wrong with ``settings`` (none when
    the type is not installed: that is refused on its own, or declares no check)."""
    try:
        factory = fence_agent_class(settings.type)
    except UnknownFenceAgentType:
        return []
    check = getattr(factory, "config_problems", None)
    if not callable(check):
        return []
    config, _host = agent_config(connector_id=connector_id, settings=settings)
    return list(cast(ProblemCheck, check)(config))
