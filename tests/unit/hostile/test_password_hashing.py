"""Password hashes cost bounded memory and are upgraded on login (issue 14, defect 5)."""

from __future__ import annotations

import json
from pathlib import Path

from argon2 import PasswordHasher
from argon2.low_level import Type

from esc_orch.daemon.users import UserStore, default_hasher


def _params(store_path: Path, name: str) -> str:
    raw = json.loads(store_path.read_text())
    return str(raw["users"][name]["password_hash"]).split("$")[3]


def test_default_hashes_are_argon2id_with_19_mib() -> None:
    hasher = default_hasher()
    assert hasher.memory_cost == 19 * 1024
    assert hasher.parallelism == 1
    assert hasher.type is Type.ID


def test_a_hash_with_old_parameters_is_rehashed_on_successful_login(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    old = PasswordHasher(time_cost=1, memory_cost=2048, parallelism=2)
    UserStore(path=path, hasher=old).add(name="admin", password="pw-1")
    assert _params(path, "admin") == "m=2048,t=1,p=2"
    new = UserStore(path=path, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    assert not new.verify_password(username="admin", password="wrong")
    assert _params(path, "admin") == "m=2048,t=1,p=2"  # a failure changes nothing
    assert new.verify_password(username="admin", password="pw-1")
    assert _params(path, "admin") == "m=1024,t=1,p=1"
    assert new.verify_password(username="admin", password="pw-1")
    assert not new.verify_password(username="admin", password="pw-2")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
