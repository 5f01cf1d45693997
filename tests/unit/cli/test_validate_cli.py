"""esc-orch-validate: payloads checked together, errors with their path, exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.cli.validate import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CONNECTORS = EXAMPLES / "vim_connectors.xml"
DEPLOY = EXAMPLES / "deploy_csp_1.xml"


def test_files_are_validated_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CONNECTORS), str(DEPLOY)]) == 0
    assert "valid:" in capsys.readouterr().out


def test_a_reference_to_a_missing_connector_is_reported_with_its_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(DEPLOY)]) == 1
    err = capsys.readouterr().err
    assert "esc:locator/esc:vim_id" in err and '"CSP-1"' in err


def test_a_bad_value_names_its_file_and_leaf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(DEPLOY.read_text().replace("<vcpus>2</vcpus>", "<vcpus>two</vcpus>"))
    assert main([str(CONNECTORS), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: ") and "esc:vcpus" in err and '"two"' in err


def test_unreadable_or_malformed_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<esc_datamodel")
    assert main([str(broken)]) == 2
    assert "malformed XML" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.xml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("esc-orch-validate")
    done = subprocess.run(
        [str(script), str(CONNECTORS), str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_what_edit_config_refuses_beyond_yang_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's typo (disk-resize ``>true``) is valid YANG but refused by the datastore's
    semantic checks; the validator runs the same checks (it used to say "valid")."""
    typo = tmp_path / "typo.xml"
    text = DEPLOY.read_text()
    marker = "<name>disk-resize</name>"
    start = text.index(marker)
    value = text.index("<value>", start)
    end = text.index("</value>", value)
    typo.write_text(text[:value] + "<value>>true" + text[end:])
    assert main([str(CONNECTORS), str(typo)]) == 1
    err = capsys.readouterr().err
    assert "disk-resize" in err


FENCE = EXAMPLES / "vim_connector_fence.xml"


def test_a_fence_agent_of_an_installed_type_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CONNECTORS), str(FENCE)]) == 0
    assert "valid:" in capsys.readouterr().out


def test_a_fence_agent_type_nobody_installed_is_refused_naming_the_installed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "fence.xml"
    bad.write_text(FENCE.read_text().replace(">CSP_SIM_POWER<", ">IPMI<"))
    assert main([str(CONNECTORS), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "/eo:fence_agent/eo:type" in err
    assert "no fence agent of type 'IPMI' is installed" in err and "CSP_SIM_POWER" in err


def test_the_retired_fence_properties_are_refused_naming_the_new_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.xml"
    old.write_text(
        CONNECTORS.read_text().replace(
            "<property><name>url</name><value>http://127.0.0.1:8441</value></property>",
            "<property><name>url</name><value>http://127.0.0.1:8441</value></property>"
            "<property><name>fence_agent_url</name><value>http://x</value></property>",
        )
    )
    assert main([str(old)]) == 1
    err = capsys.readouterr().err
    assert "esc:property[esc:name='fence_agent_url']" in err
    assert "put this value in eo:fence_agent/url" in err
