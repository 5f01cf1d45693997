"""The user store: who may open a NETCONF session, with argon2 password hashes and SSH keys.

A small JSON file (``users.json``, mode 0600) in the data directory, written atomically
(temporary file, fsync, rename) so a crash never leaves a half-written store, and re-read
when it changes on disk so ``esc-orchd useradd`` takes effect without restarting the daemon.
It implements the northbound's ``Authenticator`` port.

Password hashes are argon2id with OWASP's low-memory parameters (19 MiB, 2 passes, 1 lane)
instead of argon2-cffi's 64 MiB default: 30 concurrent wrong-password logins took the
daemon from 105 MB to 498 MB. At most :data:`MAX_CONCURRENT_CHECKS` checks run at once
(whatever the caller), so memory is bounded by that times ``memory_cost``. A stored hash
made with other parameters is re-hashed on the next successful login.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

USERS_FILE = "users.json"
#: Password checks at once in one process (each costs the hash's memory_cost).
MAX_CONCURRENT_CHECKS = 2


def default_hasher() -> PasswordHasher:
    """argon2id, m=19 MiB, t=2, p=1 (OWASP's recommended minimum)."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


class UserStoreError(Exception):
    """A user-store operation was refused (unknown user, invalid name or key...)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str | None
    authorized_keys: tuple[str, ...] = ()


def check_public_key_line(line: str) -> str:
    """Normalise one OpenSSH public key line, or raise :class:`UserStoreError`."""
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        raise UserStoreError(f"not an OpenSSH public key line: {line.strip()[:40]!r}")
    try:
        base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise UserStoreError("the public key is not valid base64") from None
    return " ".join(parts)


@dataclass
class UserStore:
    """Users of one data directory. Thread-safe; authentication runs in worker threads."""

    path: Path
    hasher: PasswordHasher = field(default_factory=default_hasher)
    _users: dict[str, User] = field(default_factory=dict, init=False)
    _stamp: tuple[int, int] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _dummy_hash: str | None = field(default=None, init=False)
    _checks: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS), init=False
    )

    @classmethod
    def in_dir(cls, data_dir: Path) -> UserStore:
        return cls(path=data_dir / USERS_FILE)

    # ------------------------------------------------------------ Authenticator port

    def verify_password(self, *, username: str, password: str) -> bool:
        user = self._current().get(username)
        if user is None or user.password_hash is None:
            # Spend the same time as a real check, so timing does not reveal user names.
            self._verify(self._dummy(), password)
            return False
        if not self._verify(user.password_hash, password):
            return False
        if self._needs_rehash(user.password_hash):
            self._rehash(name=username, old_hash=user.password_hash, password=password)
        return True

    def authorized_keys(self, *, username: str) -> tuple[str, ...]:
        user = self._current().get(username)
        return user.authorized_keys if user else ()

    # ------------------------------------------------------------ administration

    def users(self) -> dict[str, User]:
        return dict(self._current())

    def add(
        self, *, name: str, password: str | None, authorized_keys: tuple[str, ...] = ()
    ) -> None:
        if not _NAME.match(name):
            raise UserStoreError(f"invalid user name {name!r}")
        if password is None and not authorized_keys:
            raise UserStoreError("a user needs a password or an authorized key")
        keys = tuple(check_public_key_line(k) for k in authorized_keys)
        with self._lock:
            users = self._load()
            if name in users:
                raise UserStoreError(f"user {name!r} already exists")
            users[name] = User(
                name=name,
                password_hash=self.hasher.hash(password) if password is not None else None,
                authorized_keys=keys,
            )
            self._save(users)

    def delete(self, *, name: str) -> None:
        with self._lock:
            users = self._load()
            if users.pop(name, None) is None:
                raise UserStoreError(f"no user {name!r}")
            self._save(users)

    def set_password(self, *, name: str, password: str) -> None:
        with self._lock:
            users = self._load()
            user = users.get(name)
            if user is None:
                raise UserStoreError(f"no user {name!r}")
            users[name] = User(
                name=name,
                password_hash=self.hasher.hash(password),
                authorized_keys=user.authorized_keys,
            )
            self._save(users)

    # ------------------------------------------------------------ storage

    def _verify(self, password_hash: str, password: str) -> bool:
        with self._checks:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def _needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def _rehash(self, *, name: str, old_hash: str, password: str) -> None:
        """Store ``password`` hashed with the current parameters, unless the hash changed."""
        with self._checks:
            new_hash = self.hasher.hash(password)
        with self._lock:
            users = self._load()
            user = users.get(name)
            if user is None or user.password_hash != old_hash:
                return  # changed meanwhile (passwd, userdel): leave it alone
            users[name] = User(
                name=name, password_hash=new_hash, authorized_keys=user.authorized_keys
            )
            self._save(users)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(os.urandom(16).hex())
        return self._dummy_hash

    def _current(self) -> dict[str, User]:
        """The users as on disk now (re-read only when the file changed)."""
        with self._lock:
            try:
                st = self.path.stat()
                stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:
                self._users = self._load()
                self._stamp = stamp
            return self._users

    def _load(self) -> dict[str, User]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UserStoreError(f"cannot read {self.path}: {exc}") from None
        users: dict[str, User] = {}
        for name, entry in dict(raw.get("users", {})).items():
            users[str(name)] = User(
                name=str(name),
                password_hash=entry.get("password_hash"),
                authorized_keys=tuple(entry.get("authorized_keys", ())),
            )
        return users

    def _save(self, users: dict[str, User]) -> None:
        document = {
            "version": 1,
            "users": {
                u.name: {
                    "password_hash": u.password_hash,
                    "authorized_keys": list(u.authorized_keys),
                }
                for u in sorted(users.values(), key=lambda u: u.name)
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".users.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._stamp = None  # force a re-read
