"""VIM credentials encrypted at rest: Fernet tokens in place of secret leaf values.

The YANG module marks secret leaves (``esc:secret``: the credential values of a VIM
connector's users). They were stored in clear in the database, so anyone who could read the
SQLite file, its WAL or a PostgreSQL dump had the VIM passwords. Now the store writes each
secret leaf's value as ``$fernet$<token>`` inside the unit's XML (the same column, the rest of
the XML readable as before) and decrypts it when the row is read, so everything above the
store sees plain values, and canonical bytes compare as before.

The key lives apart from the database: a file (default ``secrets.key`` in the data
directory, ``[store] key_file`` to put it elsewhere) created 0600, holding one urlsafe-base64
Fernet key per line, the first one current. ``esc-orchd rotate-key`` (:func:`rotate_key`)
adds a new current key, re-encrypts every row with it, then drops the old keys.

:class:`SecretBox` is bound to an engine's dialect by ``tables.make_engine``; the column type
``tables.SealedXml`` calls it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from lxml import etree

from esc_orch.model.schema import SchemaNode, data_roots
from esc_orch.model.units import canonical

KEY_FILE = "secrets.key"
MARKER = "$fernet$"
_MARKER_BYTES = MARKER.encode()
_ROOT_NAME = re.compile(rb"\s*<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class SecretsError(Exception):
    """The key file is unusable, or a stored secret does not decrypt with any key."""


# ---------------------------------------------------------------- where secrets are


@cache
def _secret_paths() -> tuple[tuple[str, ...], ...]:
    """Every secret leaf as the local names from a data root down to the leaf."""
    found: list[tuple[str, ...]] = []

    def walk(node: SchemaNode, path: tuple[str, ...]) -> None:
        here = (*path, node.name)
        if node.secret:
            found.append(here)
        elif node.holds_secret:
            for child in node.children.values():
                walk(child, here)

    for root in data_roots().values():
        walk(root, ())
    return tuple(found)


@cache
def _paths_below(top: str) -> tuple[tuple[str, ...], ...]:
    """Secret paths relative to an element named ``top`` (a unit's root)."""
    out = []
    for path in _secret_paths():
        for i, name in enumerate(path[:-1]):
            if name == top:
                out.append(path[i + 1 :])
    return tuple(out)


def _secret_elements(root: etree._Element) -> list[etree._Element]:
    found: list[etree._Element] = []
    for rel in _paths_below(etree.QName(root).localname):
        level = [root]
        for name in rel:
            level = [c for el in level for c in el if etree.QName(c).localname == name]
        found.extend(level)
    return found


# ---------------------------------------------------------------- the box


class SecretBox:
    """Seals and opens the secret leaves of unit XML with a list of Fernet keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretsError("no key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SecretsError(f"invalid Fernet key: {exc}") from None
        self.keys = tuple(keys)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> SecretBox:
        return cls(load_or_create_keys(path, create=create))

    def seal(self, xml: bytes) -> bytes:
        """``xml`` with every clear secret value replaced by a token."""
        root = self._candidate(xml)
        if root is None:
            return xml
        changed = False
        for el in _secret_elements(root):
            text = el.text or ""
            if text and not text.startswith(MARKER):
                el.text = MARKER + self._fernet.encrypt(text.encode()).decode("ascii")
                changed = True
        return canonical(root) if changed else xml

    def open(self, xml: bytes) -> bytes:
        """``xml`` with every token replaced by its clear value."""
        if _MARKER_BYTES not in xml:
            return xml
        root = etree.fromstring(xml, _PARSER)
        for el in _secret_elements(root):
            text = el.text or ""
            if text.startswith(MARKER):
                try:
                    el.text = self._fernet.decrypt(text[len(MARKER) :].encode()).decode()
                except InvalidToken:
                    raise SecretsError(
                        "a stored secret does not decrypt with the key file's keys"
                    ) from None
        return canonical(root)

    def _candidate(self, xml: bytes) -> etree._Element | None:
        """The parsed unit if its root element can hold a secret (read from its start tag,
        so the units of other kinds, nearly all of them, are never parsed)."""
        match = _ROOT_NAME.match(xml)
        if match is None or not _paths_below(match.group(1).decode("ascii", "replace")):
            return None
        return etree.fromstring(xml, _PARSER)


# ---------------------------------------------------------------- the key file


def load_or_create_keys(path: Path, *, create: bool = True) -> list[bytes]:
    """The keys of ``path`` (first = current); a new file with one key if it is missing."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if not create:
            raise SecretsError(f"no key file {path}") from None
        key = Fernet.generate_key()
        try:
            _write_new(path, [key])
        except FileExistsError:  # another process created it meanwhile
            return load_or_create_keys(path, create=False)
        return [key]
    except OSError as exc:
        raise SecretsError(f"cannot read {path}: {exc}") from None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    keys = [line.strip().encode() for line in text.splitlines() if line.strip()]
    if not keys:
        raise SecretsError(f"{path} holds no key")
    return keys


def _write_new(path: Path, keys: Sequence[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(k + b"\n" for k in keys))
        handle.flush()
        os.fsync(handle.fileno())


def write_keys(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically (temporary file 0600, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=".secrets.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"".join(k + b"\n" for k in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
