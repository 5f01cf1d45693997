"""The daemon hands its datastore what it can run: unregistered collectors are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from esc_orch.daemon.config import DaemonConfig, MonitorSettings
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


def _monitored_store(tmp_path: Path, *, allowed: tuple[str, ...], script: bool) -> Any:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    if script:
        (scripts / "servicebooted.sh").write_text("#!/bin/sh\n")
        (scripts / "servicebooted.sh").chmod(0o755)
    monitor = MonitorSettings(allowed_networks=allowed, scripts_dir=scripts)
    store = cast(Any, build_backend(tmp_path, DaemonConfig(monitor=monitor)))
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    return store


def test_a_probe_target_outside_allowed_networks_is_refused_with_its_path(tmp_path: Path) -> None:
    store = _monitored_store(tmp_path, allowed=("127.0.0.0/8",), script=True)
    try:
        with pytest.raises(RpcErrors) as info:
            store.edit_config(
                target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml")
            )
        errors = info.value.errors
        assert [e.app_tag for e in errors] == ["target-not-allowed"]
        assert errors[0].path is not None and errors[0].path.endswith(
            "/esc:vm_group[esc:name='Group1']/esc:kpi_data/esc:kpi[esc:event_name='VM_ALIVE']"
            "/esc:metric_collector/esc:nicid"
        )
        assert "192.168.23.61" in errors[0].message
        assert store.running_units("deployment") == {}  # nothing half-applied
    finally:
        store.close()


def test_a_rule_script_not_in_scripts_dir_is_refused(tmp_path: Path) -> None:
    store = _monitored_store(tmp_path, allowed=("192.168.23.0/24",), script=False)
    try:
        with pytest.raises(RpcErrors) as info:
            store.edit_config(
                target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml")
            )
        assert [e.app_tag for e in info.value.errors] == ["unknown-rule-action"]
        assert "servicebooted.sh" in info.value.errors[0].message
    finally:
        store.close()


def test_the_seed_payload_is_accepted_where_its_network_and_script_are_known(
    tmp_path: Path,
) -> None:
    store = _monitored_store(tmp_path, allowed=("192.168.23.0/24",), script=True)
    try:
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml"))
        assert len(store.running_units("deployment")) == 1
    finally:
        store.close()
