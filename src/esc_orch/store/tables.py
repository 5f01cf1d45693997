"""SQLAlchemy tables and engine set-up: the only place that knows the database schema.

``config_unit`` holds each configuration unit's canonical XML per datastore. The candidate is
an overlay on running (rows of datastore ``candidate``; ``xml`` NULL is a deletion), so an
edit, a commit and a discard cost what they touch, never a copy of the whole configuration.
``config_ref`` indexes leafrefs between units so that deleting a flavor finds the
deployments that use it without scanning them. ``event_log`` is the durable escEvent log:
its id (from the ``event_id`` counter in ``meta``) is the total order of events.
``lifecycle_journal`` holds the reactor's steps (intent before the VIM call, outcome after) and
``lifecycle_state`` each deployment's record, as the reactor produced it (see
``store/journal.py``). ``lifecycle_owed_run`` holds, per deployment, the newest committed
change whose service event is not logged yet: written in the commit's own transaction, deleted
in the transaction that logs that event, so a crash in between cannot lose it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ConfigUnitRow(Base):
    __tablename__ = "config_unit"

    datastore: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    parent_key: Mapped[str | None] = mapped_column(String(600), nullable=True)
    xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

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


class OwedRunRow(Base):
    """A committed change of a deployment whose service event (SERVICE_*) is owed."""

    __tablename__ = "lifecycle_owed_run"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: The newest configuration transaction that changed the deployment.
    txid: Mapped[int] = mapped_column(BigInteger, nullable=False)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'esc-orch.sqlite'}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
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
    Base.metadata.create_all(engine)
    return engine
