"""``esc-orchd db upgrade | current | status``: the operator's side of schema migrations.

The daemon never migrates by itself (store/migrate.py refuses an out-of-date schema and names
``esc-orchd db upgrade``): an upgrade is a step the operator takes after a backup, with the
daemon stopped. The database is the one ``serve`` would open: ``[store] url`` of the
configuration file, or the SQLite file of the data directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from esc_orch.daemon.config import ConfigError, load_config
from esc_orch.store import migrate
from esc_orch.store.tables import make_engine, sqlite_url


def database_url(*, config_path: Path | None, data_dir: Path | None) -> str:
    """The URL ``esc-orchd serve`` with these options would use."""
    config = load_config(config_path)
    url = config.store.get("url")
    if url:
        return str(url)
    directory = data_dir or config.data_dir
    if directory is None:
        raise ConfigError("a data directory is required (--data-dir or data_dir in the file)")
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory (no esc-orch data there)")
    return sqlite_url(directory)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "db",
        help="schema of the datastore: upgrade, current, status",
        description="Show or upgrade the schema of the datastore (stop the daemon and back "
        "up the data directory or database before an upgrade).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "action",
        choices=["upgrade", "current", "status"],
        help="upgrade: apply pending migrations; current: print the revision; "
        "status: the revision, the head and what is pending (exit 1 unless at the head)",
    )
    p.add_argument("--data-dir", type=Path, help="the daemon's data directory (SQLite)")
    p.add_argument("--config", type=Path, help="the daemon's TOML file ([store] url)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        url = database_url(config_path=args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(url, check_schema=False)
    try:
        if args.action == "upgrade":
            before, after = migrate.upgrade(engine)
            if before.state is migrate.SchemaState.CURRENT:
                print(f"already at the head revision {after.head}")
            else:
                print(f"upgraded from {before.current or before.state.value} to {after.current}")
            return 0
        found = migrate.status(engine)
        if args.action == "current":
            print(found.current or "none")
            return 0
        print(found.describe())
        if found.state in (migrate.SchemaState.BEHIND, migrate.SchemaState.UNVERSIONED):
            print("run: esc-orchd db upgrade (after a backup, with the daemon stopped)")
        return 0 if found.state in (migrate.SchemaState.CURRENT, migrate.SchemaState.EMPTY) else 1
    except migrate.SchemaError as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
