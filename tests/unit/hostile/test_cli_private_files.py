"""``esc-orchd`` subcommands create private files whatever the umask; rotate-key (defect 8)."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.daemon.cli import main, secure_data_dir
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.secrets import KEY_FILE
from payloads import config_of

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    """main() sets the process umask to 077; give the test process its own back."""
    old = os.umask(0o022)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_useradd_creates_a_private_data_dir(
    tmp_path: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "new" / "data"
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw-123\n"))
    assert main(["useradd", "--data-dir", str(data_dir), "admin", "--password-stdin"]) == 0
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "users.json") == 0o600


def test_serve_tightens_what_others_could_read(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    leaked = data_dir / "esc-orch.sqlite-wal"
    leaked.write_bytes(b"x")
    os.chmod(leaked, 0o644)
    secure_data_dir(data_dir)
    assert _mode(data_dir) == 0o700
    assert _mode(leaked) == 0o600


def test_rotate_key_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    store.close()
    old = (tmp_path / KEY_FILE).read_bytes()
    assert main(["rotate-key", "--data-dir", str(tmp_path)]) == 0
    assert "3 rows re-encrypted; 1 old key(s) retired" in capsys.readouterr().out
    assert (tmp_path / KEY_FILE).read_bytes() != old
    again = SqlDatastore.open(data_dir=tmp_path)
    assert all(b"change-me" in x for x in again.running_units("vim_connector").values())
    again.close()
