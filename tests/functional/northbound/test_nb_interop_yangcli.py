"""Interop with an independent client: Debian's yangcli (yuma123, C).

Run twice: against the in-thread server over the in-memory backend, and against the real
``esc-orchd serve`` subprocess with its SQLite datastore (what operators run). Skipped when
yangcli is absent, except in CI, where setup installs it and its absence is a failure.
yangcli always exits 0, even after an rpc-error or a failed login: judge its output.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsupport.memory_backend import MemoryBackend
from nbsupport.orchd import OrchdProcess, require_tool
from nbsupport.server import PASSWORD, USER, ServerThread, prepare_data_dir

pytestmark = pytest.mark.functional

YANG_DIR = Path(__file__).resolve().parents[3] / "yang"
ESC = "http://www.cisco.com/esc/esc"


@pytest.fixture
def yangcli() -> str:
    """Asked for before ``server``, so a missing tool skips before a server is started."""
    return require_tool(shutil.which("yangcli"), name="yangcli")


@pytest.fixture(params=["memory", "daemon-sqlite"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread | OrchdProcess]:
    if request.param == "daemon-sqlite":
        with OrchdProcess(data_dir=tmp_path / "data", user=USER, password=PASSWORD) as proc:
            yield proc
        return
    srv = ServerThread(data_dir=prepare_data_dir(tmp_path / "data"), backend=MemoryBackend())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_yangcli_edit_get_lock_close(
    yangcli: str, server: ServerThread | OrchdProcess, tmp_path: Path
) -> None:
    inner = tmp_path / "inner.xml"
    inner.write_text(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>YC</name></tenant></tenants>'
        "</esc_datamodel>"
    )
    script = tmp_path / "script"
    script.write_text(
        f"edit-config target=running config=@{inner}\n"
        "get-config source=running\n"
        "xget /esc_datamodel/tenants\n"
        "lock target=candidate\n"
        "unlock target=candidate\n"
        "close-session\n"
    )
    result = subprocess.run(
        [
            yangcli,
            "--server=127.0.0.1",
            f"--ncport={server.port}",
            f"--user={USER}",
            f"--password={PASSWORD}",
            "--batch-mode",
            "--display-mode=xml",
            f"--modpath={YANG_DIR}",
            f"--run-script={script}",
        ],
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = result.stdout + result.stderr
    assert "base:1.1" in out
    assert out.count("<name>YC</name>") == 2  # get-config and xget
    assert out.count("RPC OK Reply") == 4  # edit-config, lock, unlock, close-session
    assert "Discarding final buffer" not in out
    assert "rpc-error" not in out


def test_yangcli_without_modpath_fetches_the_schemas(
    yangcli: str, server: ServerThread | OrchdProcess, tmp_path: Path
) -> None:
    """No local copy of esc.yang: yangcli learns it from the server (RFC 6022 get-schema)."""
    inner = tmp_path / "inner.xml"
    inner.write_text(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>YS</name></tenant></tenants>'
        "</esc_datamodel>"
    )
    script = tmp_path / "script"
    script.write_text(
        "get-schema identifier=esc version=2026-11-27 format=yang\n"
        f"edit-config target=running config=@{inner}\n"
        "xget /esc_datamodel/tenants\n"
        "close-session\n"
    )
    result = subprocess.run(
        [
            yangcli,
            "--server=127.0.0.1",
            f"--ncport={server.port}",
            f"--user={USER}",
            f"--password={PASSWORD}",
            "--batch-mode",
            "--display-mode=xml",
            f"--run-script={script}",
        ],
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = result.stdout + result.stderr
    assert "module esc {" in out  # the text get-schema returned
    assert "<name>YS</name>" in out  # xget resolved /esc_datamodel with the fetched module
    assert "rpc-error" not in out
    assert "not found" not in out.lower()
