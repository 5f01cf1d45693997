"""SQLAlchemy tables and engine set-up: the only place that knows the database schema.

``config_unit`` holds each configuration unit's canonical XML per datastore. The candidate is
an overlay on running (rows of datastore ``candidate``; ``xml`` NULL is a deletion), so an
edit, a commit and a discard cost what they touch, never a copy of the whole configuration.
``config_ref`` indexes leafrefs between units so that deleting a flavor finds the
deployments that use it without scanning them. ``event_log`` is the durable escEvent log:
its id (from the ``event_id`` counter in ``meta``) is the total order of events.
``lifecycle_journal`` holds the reactor's steps (intent before the VIM call, outcome after) and
``lifecycle_state`` each deployment's record, as the reactor produced it (see
``store/journal.py``); ``host_down_confirmation`` the operators' confirmations that a host is
down (``store/confirmations.py``); ``lifecycle_owed_run`` holds, per deployment, the newest
committed change whose service event is not logged yet: written in the commit's own
transaction, deleted in the transaction that logs that event, so a crash in between cannot
lose it.

``config_unit.xml`` is a :class:`SealedXml`: the secret leaves inside it are encrypted with the
engine's :class:`~esc_orch.store.secrets.SecretBox` (``store/secrets.py``) on the way in and
decrypted on the way out; the column's SQL type is unchanged (a large binary).

Every change of these models needs a migration (store/migrations, docs/operations.md).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esc_orch.store.secrets import SecretBox

#: The secret box of each engine (keyed by its dialect, which the column type is handed).
_BOXES: weakref.WeakKeyDictionary[Dialect, SecretBox] = weakref.WeakKeyDictionary()


class SealedXml(TypeDecorator[bytes]):
    """Unit XML whose secret leaves are stored encrypted (clear for engines without a box)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> Any:
        box = _BOXES.get(dialect)
        return box.seal(value) if box is not None and value is not None else value

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        box = _BOXES.get(dialect)
        return box.open(bytes(value)) if box is not None else bytes(value)


class Base(DeclarativeBase):
    pass


class ConfigUnitRow(Base):
    __tablename__ = "config_unit"

    datastore: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    parent_key: Mapped[str | None] = mapped_column(String(600), nullable=True)
    xml: Mapped[bytes | None] = mapped_column(SealedXml, nullable=True)

    __table_args__ = (Index("ix_config_unit_parent", "datastore", "kind", "parent_key"),)


class ConfigRefRow(Base):
    __tablename__ = "config_ref"

    datastore: Mapped[str] = mapped_column(String(16), primary_key=True)
    src_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    src_key: Mapped[str] = mapped_column(String(600), primary_key=True)
    dst_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    dst_key: Mapped[str] = mapped_column(String(600), primary_key=True)

    __table_args__ = (Index("ix_config_ref_dst", "datastore", "dst_kind", "dst_key"),)


class MetaRow(Base):
    __tablename__ = "meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # BigInteger: the event log's id counter lives here too (no wrap at 2**31 on PostgreSQL)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EventRow(Base):
    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: Milliseconds since the epoch, UTC; strictly increasing with ``id``.
    event_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The serialized ``<escEvent>`` element.
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (Index("ix_event_log_time", "event_time"),)


class JournalRow(Base):
    """One reactor step: the intent (written before any VIM call), then its outcome."""

    __tablename__ = "lifecycle_journal"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    step_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    tenant: Mapped[str] = mapped_column(String(255), nullable=False)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    depid: Mapped[str] = mapped_column(String(64), nullable=False)
    operation: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The planned action as JSON (store/codec.py).
    action: Mapped[str] = mapped_column(Text, nullable=False)
    #: NULL while the step is in flight; done / failed / abandoned after.
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_lifecycle_journal_open", "status"),)


class LifecycleStateRow(Base):
    """One deployment's record (:class:`esc_orch.model.record.DeploymentRecord`), as is."""

    __tablename__ = "lifecycle_state"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(255), primary_key=True)
    depid: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The record's deployment state (a copy for queries; the record is the truth).
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    #: The DeploymentRecord as JSON (store/codec.py).
    record: Mapped[str] = mapped_column(Text, nullable=False)


class HostDownRow(Base):
    """An operator's confirmation that a VIM connector's host is down (``eo:confirm-host-down``).

    One row per connector, the latest confirmation: who (the NETCONF user) and when.
    """

    __tablename__ = "host_down_confirmation"

    vim_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    confirmed_by: Mapped[str] = mapped_column(String(255), nullable=False)
    #: ISO 8601, UTC.
    confirmed_at: Mapped[str] = mapped_column(String(64), nullable=False)


class MonitorStateRow(Base):
    """The monitor's memory (``snapshot``) and the recovery policy's book (``recovery_book``).

    One JSON document per name (monitor/snapshot.py): the book is written in the transaction
    of the recovery events it produced, so a recovery step is durable before it is run.
    """

    __tablename__ = "monitor_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class OwedRunRow(Base):
    """A committed change of a deployment whose service event (SERVICE_*) is owed."""

    __tablename__ = "lifecycle_owed_run"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: The newest configuration transaction that changed the deployment.
    txid: Mapped[int] = mapped_column(BigInteger, nullable=False)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'esc-orch.sqlite'}"


def make_engine(url: str, *, check_schema: bool = True, secrets: SecretBox | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    With ``check_schema`` (the store's way in) the database must be at the head revision of
    the migrations, or empty, in which case it is created at the head (store/migrate.py);
    otherwise ``SchemaError`` says which command to run. ``esc-orchd db`` opens without it.
    With ``secrets``, secret leaves of the configuration are stored encrypted with it.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True)
    if secrets is not None:
        _BOXES[engine.dialect] = secrets
    if check_schema:
        # migrate.py imports this module (the models): imported here to break the cycle.
        from esc_orch.store.migrate import ensure_current  # noqa: PLC0415

        try:
            ensure_current(engine)
        except Exception:
            engine.dispose()
            raise
    return engine
