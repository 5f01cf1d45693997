"""Schema versions of the store: Alembic migrations under ``store/migrations/versions``.

Every table of ``store/tables.py`` is under migrations. The first revision (``BASELINE``) is
the schema esc-orch created with ``create_all`` before migrations existed, so a database of
that time is *unversioned* but known: ``esc-orchd db upgrade`` stamps it as the baseline and
then applies what follows.

The daemon calls :func:`ensure_current` when it opens the store: an empty database is created
at the head revision (``create_all`` of the models, then stamped; first start just works), a
database at the head is used as is, anything else is refused with :class:`SchemaError`, whose
message names the command to run. Nothing is ever upgraded behind the operator's back.

Adding a revision (docs/operations.md, "Writing a migration"): change ``tables.py``, then
``.venv/bin/python -m esc_orch.store.migrate revision "what changes"`` writes
``versions/NNNN_what_changes.py`` from the difference between the models and the head;
review it (``op.batch_alter_table`` keeps SQLite working). tests/unit/store/test_migrations.py
fails while the models and the head revision disagree.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect

from esc_orch.store.tables import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
#: The revision that is the schema of esc-orch before migrations (0.1.0).
BASELINE = "0001"
#: The tables of the baseline: an unversioned database must hold exactly these.
BASELINE_TABLES = frozenset(
    {"config_unit", "config_ref", "meta", "event_log", "lifecycle_journal", "lifecycle_state"}
)


class SchemaState(StrEnum):
    EMPTY = "empty"  # no table of ours: created at the head on first open
    CURRENT = "current"  # at the head revision
    BEHIND = "behind"  # an older revision: esc-orchd db upgrade
    UNVERSIONED = "unversioned"  # the pre-migration schema (the baseline, not stamped)
    UNKNOWN = "unknown"  # a revision this esc-orch does not know (a newer release wrote it)
    FOREIGN = "foreign"  # unversioned tables that are not the baseline


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaStatus:
    state: SchemaState
    current: str | None  # the database's revision (None when unversioned or empty)
    head: str
    pending: tuple[str, ...]  # revisions an upgrade would apply, oldest first

    def describe(self) -> str:
        current = self.current or "none"
        text = f"schema {self.state.value}: revision {current}, head {self.head}"
        if self.pending:
            text += f", pending {' '.join(self.pending)}"
        return text


class SchemaError(Exception):
    """The database's schema is not the one this esc-orch runs on."""

    def __init__(self, *, status: SchemaStatus, url: str) -> None:
        self.status = status
        self.url = url
        super().__init__(_refusal(status))


def _refusal(status: SchemaStatus) -> str:
    if status.state in (SchemaState.BEHIND, SchemaState.UNVERSIONED):
        return (
            f"the database schema is out of date ({status.describe()}); back up the data "
            "directory (or database), then run: esc-orchd db upgrade --data-dir DIR "
            "[--config FILE]"
        )
    if status.state is SchemaState.UNKNOWN:
        return (
            f"the database schema revision {status.current} is unknown to this esc-orch "
            f"(head {status.head}): it was written by a newer release; run that release"
        )
    return (
        f"the database holds tables that are not esc-orch's ({status.describe()}); "
        "use an empty database"
    )


@functools.cache
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None, "store/migrations/versions holds no revision"
    return head


def _pending(current: str | None) -> tuple[str, ...]:
    scripts = script_directory()
    walked = scripts.iterate_revisions(head_revision(), current or "base")
    return tuple(reversed([rev.revision for rev in walked]))


def status_of(connection: Connection) -> SchemaStatus:
    head = head_revision()
    tables = set(inspect(connection).get_table_names()) - {VERSION_TABLE}
    heads = MigrationContext.configure(connection).get_current_heads()
    current = heads[0] if heads else None
    if not tables:  # a stamp left behind by dropping the tables counts as empty too
        return SchemaStatus(state=SchemaState.EMPTY, current=None, head=head, pending=())
    if current is None:
        state = SchemaState.UNVERSIONED if tables == BASELINE_TABLES else SchemaState.FOREIGN
        pending = _pending(BASELINE) if state is SchemaState.UNVERSIONED else ()
        return SchemaStatus(state=state, current=None, head=head, pending=pending)
    if current == head:
        return SchemaStatus(state=SchemaState.CURRENT, current=current, head=head, pending=())
    try:
        script_directory().get_revision(current)
    except Exception:  # alembic raises several kinds for an unknown id
        return SchemaStatus(state=SchemaState.UNKNOWN, current=current, head=head, pending=())
    return SchemaStatus(
        state=SchemaState.BEHIND, current=current, head=head, pending=_pending(current)
    )


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        return status_of(connection)


def _create_at_head(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    command.stamp(alembic_config(connection), "head")


def ensure_current(engine: Engine) -> None:
    """Use the store only at the head revision; create an empty database at the head."""
    with engine.begin() as connection:
        found = status_of(connection)
        if found.state is SchemaState.EMPTY:
            _create_at_head(connection)
            return
    if found.state is not SchemaState.CURRENT:
        raise SchemaError(status=found, url=engine.url.render_as_string(hide_password=True))


def upgrade(engine: Engine) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the database to the head revision; returns the status before and after.

    An empty database is created at the head; an unversioned baseline database is stamped
    ``BASELINE`` and upgraded from there. Unknown and foreign schemas raise SchemaError.
    """
    with engine.begin() as connection:
        before = status_of(connection)
        if before.state in (SchemaState.UNKNOWN, SchemaState.FOREIGN):
            raise SchemaError(status=before, url=engine.url.render_as_string(hide_password=True))
        if before.state is SchemaState.EMPTY:
            _create_at_head(connection)
        else:
            config = alembic_config(connection)
            if before.state is SchemaState.UNVERSIONED:
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
        after = status_of(connection)
    return before, after


def model_differences(engine: Engine) -> list[object]:
    """What autogenerate would write: the models of tables.py against the database."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))


def new_revision(message: str) -> Path:
    """Write the next revision from the difference between the models and the head."""
    number = f"{int(head_revision()) + 1:04d}"
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "change"
    with TemporaryDatabase() as engine:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        with engine.begin() as connection:
            config = alembic_config(connection)
            config.set_main_option("file_template", f"{number}_{slug}")
            command.revision(config, message=message, autogenerate=True, rev_id=number)
    script_directory.cache_clear()  # the new revision is the head now
    return MIGRATIONS_DIR / "versions" / f"{number}_{slug}.py"


class TemporaryDatabase:
    """An empty SQLite database in a temporary directory (for new_revision)."""

    def __enter__(self) -> Engine:
        import tempfile  # noqa: PLC0415 - only the developer tool needs it

        self._dir = tempfile.TemporaryDirectory(prefix="esc-orch-rev-")
        self._engine = create_engine(f"sqlite:///{self._dir.name}/rev.sqlite")
        return self._engine

    def __exit__(self, *exc: object) -> None:
        self._engine.dispose()
        self._dir.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m esc_orch.store.migrate",
        description="Developer tool: write the next schema revision from tables.py.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("revision", help="autogenerate the next revision; review it after")
    p.add_argument("message", help="what the revision changes, e.g. 'journal: add attempt'")
    args = parser.parse_args(argv)
    path = new_revision(args.message)
    print(f"wrote {path}: review it, then run the migration tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
