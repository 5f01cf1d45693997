"""``esc-orchd rotate-key``: a new secrets key, every stored secret re-encrypted with it.

Steps, each safe to repeat after a crash: (1) the key file gets the new key first and keeps
the old ones, so every token decrypts whatever happens next; (2) in one transaction, every
configuration row holding a secret is rewritten, which encrypts it with the new key (and
encrypts values still stored in clear by an older version); (3) the old keys are dropped
from the file. Run it with the daemon stopped: a running daemon keeps the keys it loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from esc_orch.store.secrets import SecretBox, load_or_create_keys, write_keys
from esc_orch.store.tables import ConfigUnitRow, make_engine


@dataclass(frozen=True, slots=True)
class Rotation:
    rows: int  # configuration rows re-encrypted
    retired: int  # old keys dropped from the key file


def rotate_key(*, url: str, key_file: Path) -> Rotation:
    old = load_or_create_keys(key_file, create=True)
    new = Fernet.generate_key()
    write_keys(key_file, [new, *old])
    box = SecretBox([new, *old])
    engine = make_engine(url, secrets=box)
    rows = 0
    try:
        with Session(engine) as session, session.begin():
            for row in session.scalars(select(ConfigUnitRow)):
                if row.xml is not None and box.seal(row.xml) != row.xml:
                    flag_modified(row, "xml")
                    rows += 1
    finally:
        engine.dispose()
    write_keys(key_file, [new])
    return Rotation(rows=rows, retired=len(old))
