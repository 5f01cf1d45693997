"""Daemon parts without a network: login throttle, user store, config file, sd_notify."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from esc_orch.daemon.config import ConfigError, load_config
from esc_orch.daemon.sdnotify import sd_notify
from esc_orch.daemon.users import UserStore, UserStoreError
from esc_orch.northbound.auth import LoginThrottle

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDc5YgtGqJ0zcHMhcF1Vnqx0WOCeYJmLUDK5bHsbuv7w me@host"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_backs_off_per_user_and_peer_and_forgets() -> None:
    clock = FakeClock()
    t = LoginThrottle(base_delay=1, max_delay=4, forget_after=60, clock=clock)
    keys = t.keys(username="u", peer="10.0.0.1")
    assert t.delay(keys) == 0
    for expected in (1, 2, 4, 4):
        t.record_failure(keys)
        assert t.delay(keys) == expected
    # another user from the same peer is slowed down too; the same user from elsewhere as well
    assert t.delay(t.keys(username="v", peer="10.0.0.1")) == 4
    assert t.delay(t.keys(username="u", peer="10.0.0.2")) == 4
    clock.now += 61
    assert t.delay(keys) == 0


def test_throttle_success_clears_only_the_user() -> None:
    t = LoginThrottle(base_delay=1, clock=FakeClock())
    keys = t.keys(username="u", peer="p")
    t.record_failure(keys)
    t.record_success(keys[:1])
    assert t.delay(keys) == 1  # the peer still carries its failure


def test_throttle_is_bounded_in_memory() -> None:
    t = LoginThrottle(max_entries=10, clock=FakeClock())
    for i in range(100):
        t.record_failure([f"user:{i}"])
    assert len(t._failures) == 10


def _store(tmp_path: Path) -> UserStore:
    return UserStore(
        path=tmp_path / "users.json", hasher=PasswordHasher(time_cost=1, memory_cost=1024)
    )


def test_user_store_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add(name="alice", password="pw", authorized_keys=(KEY,))
    assert (tmp_path / "users.json").stat().st_mode & 0o777 == 0o600
    raw = json.loads((tmp_path / "users.json").read_text())
    assert raw["users"]["alice"]["password_hash"].startswith("$argon2")
    assert store.verify_password(username="alice", password="pw")
    assert not store.verify_password(username="alice", password="nope")
    assert not store.verify_password(username="bob", password="pw")
    assert store.authorized_keys(username="alice") == (KEY,)
    store.set_password(name="alice", password="new")
    assert store.verify_password(username="alice", password="new")
    # another process (esc-orchd useradd) changes the file: the running store sees it
    _store(tmp_path).add(name="bob", password="b")
    assert store.verify_password(username="bob", password="b")
    store.delete(name="alice")
    assert not store.verify_password(username="alice", password="new")
    assert not list(tmp_path.glob(".users.*"))  # no temporary files left behind


@pytest.mark.parametrize(
    ("name", "password", "keys"),
    [
        ("bad name", "pw", ()),
        ("ok", None, ()),
        ("ok", "pw", ("ssh-ed25519 !!!",)),
        ("ok", "pw", ("x",)),
    ],
)
def test_user_store_refuses_bad_input(
    tmp_path: Path, name: str, password: str | None, keys: tuple[str, ...]
) -> None:
    with pytest.raises(UserStoreError):
        _store(tmp_path).add(name=name, password=password, authorized_keys=keys)


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'bind = "127.0.0.2"\nport = 2830\ndata_dir = "/var/lib/x"\nlog_level = "DEBUG"\n'
        "[limits]\nmax_message_size = 1000\nhello_timeout = 5\nmax_sessions = 3\n"
    )
    config = load_config(path)
    assert config.bind == "127.0.0.2"
    assert config.port == 2830
    assert config.data_dir == Path("/var/lib/x")
    assert config.log_level == "debug"
    assert config.limits.max_message_size == 1000
    assert config.limits.hello_timeout == 5.0
    assert config.limits.max_sessions == 3


@pytest.mark.parametrize(
    "text",
    [
        "port = 70000\n",
        "colour = 1\n",
        "[limits]\nfoo = 1\n",
        "[limits]\nhello_timeout = -1\n",
        "x = [\n",
    ],
)
def test_bad_config_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_shipped_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "esc-orchd.toml"
    config = load_config(example)
    assert config.bind == "127.0.0.1"


def test_sd_notify(tmp_path: Path) -> None:
    assert sd_notify("READY=1", environ={}) is False
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert sd_notify("READY=1", environ={"NOTIFY_SOCKET": str(path)})
        assert sock.recv(100) == b"READY=1"
    assert sd_notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
