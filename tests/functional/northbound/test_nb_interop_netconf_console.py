"""Interop with netconf-console2, an independent NETCONF client, against the real daemon.

The daemon is ``esc-orchd serve`` as operators run it (real user store, SQLite datastore,
libyang validation), not the in-memory test backend, so this proves the whole path a
netconf-console2 user takes: hello, the two example files, get-config, and an rpc-error.
netconf-console2 prints replies on stdout and exits 255 after an rpc-error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from nbsupport.orchd import OrchdProcess, require_tool

pytestmark = pytest.mark.functional

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ESC = "http://www.cisco.com/esc/esc"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
USER, PASSWORD = "nc2", "nc2-pw"
LOGIN = ("-u", USER, "-p", PASSWORD, "--reply-timeout", "20")


def _netconf_console() -> str | None:
    beside_python = Path(sys.executable).parent / "netconf-console2"
    return str(beside_python) if beside_python.exists() else shutil.which("netconf-console2")


@pytest.fixture(scope="module")
def tool() -> str:
    """Asked for before ``daemon``, so a missing tool skips before a daemon is started."""
    return require_tool(_netconf_console(), name="netconf-console2")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchdProcess]:
    data_dir = tmp_path_factory.mktemp("nc2") / "data"
    with OrchdProcess(data_dir=data_dir, user=USER, password=PASSWORD) as proc:
        yield proc


def _run(tool: str, daemon: OrchdProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "--host", "127.0.0.1", "--port", str(daemon.port), *LOGIN, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _xml(stdout: str) -> etree._Element:
    return etree.fromstring(stdout.encode())


def test_netconf_console2_session(tool: str, daemon: OrchdProcess, tmp_path: Path) -> None:
    hello = _run(tool, daemon, "--hello")
    assert hello.returncode == 0, hello.stdout + hello.stderr
    caps = {c.text for c in _xml(hello.stdout).iter(f"{{{NC}}}capability")}
    assert "urn:ietf:params:netconf:base:1.1" in caps
    assert any(c and c.startswith(f"{ESC}?module=esc") for c in caps)

    for example in ("vim_connectors.xml", "deploy_csp_1.xml"):
        edit = _run(tool, daemon, "--edit-config", str(EXAMPLES / example))
        assert edit.returncode == 0, f"{example}: {edit.stdout}{edit.stderr}"
        assert _xml(edit.stdout).tag == f"{{{NC}}}ok"

    got = _run(tool, daemon, "--get-config")
    assert got.returncode == 0, got.stdout + got.stderr
    data = _xml(got.stdout)
    ns = {"e": ESC}
    assert data.xpath(
        "//e:tenant[e:name='name1']/e:deployments/e:deployment[e:name='dep']"
        "/e:vm_group[e:name='Group1']/e:locator/e:vim_id/text()",
        namespaces=ns,
    ) == ["CSP-1"]
    assert sorted(data.xpath("//e:vim_connector/e:id/text()", namespaces=ns)) == [
        "CSP-1",
        "CSP-2",
        "CSP-3",
    ]
    assert "change-me" not in got.stdout  # secrets are never returned in clear

    bad = tmp_path / "bad.xml"
    bad.write_text(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>t2</name><deployments>'
        "<deployment><name>d2</name><vm_group><name>g</name><flavor>NO_SUCH_FLAVOR</flavor>"
        "</vm_group></deployment></deployments></tenant></tenants></esc_datamodel>"
    )
    refused = _run(tool, daemon, "--edit-config", str(bad))
    assert refused.returncode != 0
    error = _xml(refused.stdout)
    assert error.tag == f"{{{NC}}}rpc-error"
    assert error.findtext(f"{{{NC}}}error-tag") == "data-missing"
    assert "NO_SUCH_FLAVOR" in (error.findtext(f"{{{NC}}}error-message") or "")
    assert "vm_group" in (error.findtext(f"{{{NC}}}error-path") or "")

    after = _run(tool, daemon, "--get-config")
    assert "t2" not in _xml(after.stdout).xpath("//e:tenant/e:name/text()", namespaces=ns)
