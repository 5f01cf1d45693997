"""The module lints clean with two independent tools, and the shipped examples validate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.model.edit import Operation, apply_edit, check_edit
from esc_orch.model.schema import yang_dir
from esc_orch.model.units import new_data
from esc_orch.model.validate import validate_config, validate_notification
from payloads import EXAMPLES, FIXTURES, config_of

YANG = yang_dir()


def _pyang_path() -> str:
    share = Path(sys.prefix) / "share" / "yang" / "modules" / "ietf"
    return f"{YANG}:{share}"


def test_pyang_strict_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyang", "--strict", "-p", _pyang_path(), str(YANG / "esc.yang")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_yanglint_is_clean() -> None:
    if shutil.which("yanglint") is None:
        if os.environ.get("CI"):
            pytest.fail("yanglint (Debian libyang-tools) must be installed in CI")
        pytest.skip("yanglint not installed (apt install libyang-tools)")
    result = subprocess.run(
        ["yanglint", "-p", str(YANG), str(YANG / "esc.yang")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def _body(path: Path) -> bytes:
    return etree.tostring(etree.parse(str(path)).getroot())


@pytest.mark.parametrize(
    ("connectors", "deployment"),
    [
        (["vim_connectors.xml"], "deploy_csp_1.xml"),
        (["vim_connectors.xml"], "deploy_csp_2.xml"),
        (["vim_connectors.xml"], "deploy_csp_1_local.xml"),
        (["vim_connectors.xml", "vim_connector_cluster.xml"], "deploy_gluster.xml"),
    ],
)
def test_examples_validate_together(connectors: list[str], deployment: str) -> None:
    data = new_data()
    for name in [*connectors, deployment]:  # one edit each, as a client would send them
        config = config_of(EXAMPLES / name)
        assert check_edit(config, default_operation=Operation.MERGE) == []
        assert apply_edit(data, config, default_operation=Operation.MERGE).errors == []
    assert validate_config(data) == []


def test_seed_payload_without_its_connector_is_refused() -> None:
    errors = validate_config(_body(EXAMPLES / "deploy_csp_1.xml"))
    assert [e.tag for e in errors] == ["data-missing"]
    assert errors[0].app_tag == "instance-required"
    assert errors[0].path is not None and errors[0].path.endswith("esc:locator/esc:vim_id")


@pytest.mark.parametrize("fixture", sorted((FIXTURES / "notifications").glob("*.xml")), ids=str)
def test_seed_notifications_are_esc_events(fixture: Path) -> None:
    assert validate_notification(etree.parse(str(fixture)).getroot()) == []


def test_notification_with_unknown_event_type_is_refused() -> None:
    text = (FIXTURES / "notifications" / "s1_service_updated.xml").read_bytes()
    bad = text.replace(b"SERVICE_UPDATED", b"SERVICE_TELEPORTED")
    errors = validate_notification(etree.fromstring(bad))
    assert errors and errors[0].tag == "invalid-value"


def test_notification_without_event_type_is_refused() -> None:
    text = (FIXTURES / "notifications" / "s1_service_updated.xml").read_bytes()
    bad = text.replace(b"<type>SERVICE_UPDATED</type>", b"")
    errors = validate_notification(etree.fromstring(bad))
    assert errors and errors[0].tag == "data-missing"
