"""VIM credentials are encrypted at rest, with a key file apart from the database (defect 8).

The passwords were in clear in the SQLite file and its WAL, readable by any local user.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.rotation import rotate_key
from esc_orch.store.secrets import KEY_FILE, MARKER, SecretBox, SecretsError
from esc_orch.store.tables import sqlite_url
from payloads import config_of

ESC = "http://www.cisco.com/esc/esc"
PASSWORD = "Zq7-unique-vim-password"
CONNECTOR = f"""
<esc_system_config xmlns="{ESC}"><vim_connectors><vim_connector>
  <id>CSP-9</id><type>FAKE</type>
  <properties><property><name>url</name><value>http://127.0.0.1:9</value></property></properties>
  <users><user><id>admin</id><credentials><properties>
    <property><name>password</name><value>{PASSWORD}</value></property>
  </properties></credentials></user></users>
</vim_connector></vim_connectors></esc_system_config>"""


def _raw_rows(data_dir: Path) -> list[bytes]:
    engine = create_engine(sqlite_url(data_dir))
    with engine.connect() as conn:
        rows = [bytes(r[0]) for r in conn.execute(text("SELECT xml FROM config_unit")) if r[0]]
    engine.dispose()
    return rows


def _files_hold(data_dir: Path, needle: bytes) -> list[str]:
    return [p.name for p in data_dir.iterdir() if p.is_file() and needle in p.read_bytes()]


def _stored(store: SqlDatastore) -> bytes:
    (xml,) = store.running_units("vim_connector").values()
    return xml


def test_the_password_is_never_in_the_database_files(tmp_path: Path) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.edit_config(target=Datastore.RUNNING, config=config_of(CONNECTOR))
    store.edit_config(target=Datastore.CANDIDATE, config=config_of(CONNECTOR.replace("9<", "8<")))
    assert PASSWORD.encode() in _stored(store)  # the layers above see it in clear
    assert _files_hold(tmp_path, PASSWORD.encode()) == []  # DB, WAL and SHM do not
    rows = [r for r in _raw_rows(tmp_path) if b"vim_connector" in r]
    assert rows and all(MARKER.encode() in r for r in rows)
    assert oct((tmp_path / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    store.close()
    again = SqlDatastore.open(data_dir=tmp_path)
    assert PASSWORD.encode() in _stored(again)
    again.close()


def test_a_wrong_key_is_an_error_not_garbage(tmp_path: Path) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.edit_config(target=Datastore.RUNNING, config=config_of(CONNECTOR))
    store.close()
    other = tmp_path / "other.key"
    SecretBox.from_file(other)
    # running is loaded into memory when the store opens (store/image.py), so a wrong key
    # is refused there, before the daemon serves anything.
    with pytest.raises(SecretsError):
        SqlDatastore.open(data_dir=tmp_path, key_file=other)


def test_rotation_re_encrypts_and_retires_the_old_key(tmp_path: Path) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.edit_config(target=Datastore.RUNNING, config=config_of(CONNECTOR))
    store.close()
    key_file = tmp_path / KEY_FILE
    old_key = key_file.read_bytes()
    before = [r for r in _raw_rows(tmp_path) if b"vim_connector" in r]
    done = rotate_key(url=sqlite_url(tmp_path), key_file=key_file)
    assert (done.rows, done.retired) == (1, 1)
    assert key_file.read_bytes() != old_key
    assert len(key_file.read_bytes().split()) == 1
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    after = [r for r in _raw_rows(tmp_path) if b"vim_connector" in r]
    assert after != before
    old_only = tmp_path / "old.key"
    old_only.write_bytes(old_key)
    with pytest.raises(SecretsError):  # the old key no longer opens what is stored
        SecretBox.from_file(old_only, create=False).open(after[0])
    reopened = SqlDatastore.open(data_dir=tmp_path)
    assert PASSWORD.encode() in _stored(reopened)
    reopened.close()


def test_values_stored_in_clear_by_an_older_version_are_encrypted_by_rotation(
    tmp_path: Path,
) -> None:
    legacy = SqlDatastore.open(url=sqlite_url(tmp_path))  # no key: as before this change
    legacy.edit_config(target=Datastore.RUNNING, config=config_of(CONNECTOR))
    legacy.close()
    assert any(PASSWORD.encode() in r for r in _raw_rows(tmp_path))
    rotate_key(url=sqlite_url(tmp_path), key_file=tmp_path / KEY_FILE)
    assert not any(PASSWORD.encode() in r for r in _raw_rows(tmp_path))
    store = SqlDatastore.open(data_dir=tmp_path)
    assert PASSWORD.encode() in _stored(store)
    store.close()
    assert os.path.exists(tmp_path / KEY_FILE)
