"""Interop with an independent client: Debian's yangcli (yuma123, C). Skipped if absent.

yangcli always exits 0, even after an rpc-error or a failed login: judge its output.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbsupport.memory_backend import MemoryBackend
from nbsupport.server import PASSWORD, USER, ServerThread, prepare_data_dir

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(shutil.which("yangcli") is None, reason="yangcli not installed"),
]

YANG_DIR = Path(__file__).resolve().parents[3] / "yang"
ESC = "http://www.cisco.com/esc/esc"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(data_dir=prepare_data_dir(tmp_path / "data"), backend=MemoryBackend())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_yangcli_edit_get_lock_close(server: ServerThread, tmp_path: Path) -> None:
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
            "yangcli",
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
