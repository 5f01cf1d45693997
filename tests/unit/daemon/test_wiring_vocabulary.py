"""The daemon hands its datastore what it can run: unregistered collectors are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from esc_orch.daemon.config import DaemonConfig
from esc_orch.daemon.wiring import build_backend, vocabulary
from esc_orch.model.errors import RpcErrors
from esc_orch.northbound.backend import Datastore
from payloads import EXAMPLES, config_of


def test_the_daemon_knows_icmpping() -> None:
    assert "ICMPPing" in vocabulary().collector_types


def test_the_production_store_refuses_an_unregistered_collector(tmp_path: Path) -> None:
    store = cast(Any, build_backend(tmp_path, DaemonConfig()))
    try:
        store.edit_config(
            target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml")
        )
        payload = (EXAMPLES / "deploy_csp_1.xml").read_text()
        payload = payload.replace("<type>ICMPPing</type>", "<type>SUBSCRIBER_SESSION</type>")
        with pytest.raises(RpcErrors) as info:
            store.edit_config(target=Datastore.RUNNING, config=config_of(payload))
        assert info.value.errors[0].app_tag == "unknown-collector"
    finally:
        store.close()
