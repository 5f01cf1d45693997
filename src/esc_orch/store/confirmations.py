"""Durable operator confirmations that a VIM connector's host is down.

``eo:confirm-host-down`` is proof that lets a move start a VM elsewhere while its old host does
not answer (:mod:`esc_orch.reconcile.proof`). Such a statement must survive a restart of the
daemon (the move may be resumed after it), so it is a row of ``host_down_confirmation``: who
confirmed it and when, the latest per connector.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.store.tables import HostDownRow


class ConfirmationStore:
    """Reads and writes ``host_down_confirmation`` (blocking: call from a worker thread)."""

    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine

    def save(self, confirmation: HostDownConfirmation) -> None:
        with Session(self._engine) as session, session.begin():
            session.merge(
                HostDownRow(
                    vim_id=confirmation.host,
                    confirmed_by=confirmation.by,
                    confirmed_at=confirmation.at.isoformat(),
                )
            )

    def forget(self, vim_id: str) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(delete(HostDownRow).where(HostDownRow.vim_id == vim_id))

    def all(self) -> dict[str, HostDownConfirmation]:
        with Session(self._engine) as session:
            rows = session.scalars(select(HostDownRow)).all()
            return {
                row.vim_id: HostDownConfirmation(
                    host=row.vim_id,
                    by=row.confirmed_by,
                    at=datetime.fromisoformat(row.confirmed_at),
                )
                for row in rows
            }
