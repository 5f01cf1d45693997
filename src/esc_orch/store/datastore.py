"""The configuration datastore: running and candidate, RFC 6241 edits, atomic commits.

Implements :class:`esc_orch.northbound.backend.ConfigBackend` on SQLAlchemy. An edit is
checked (structure, then types with libyang) before anything is read; the units it touches
are loaded into a small tree, edited with the pure engine, validated with libyang together
with the units they reference and the units that reference them, and written in one
transaction. Nothing is written when anything fails (stop-on-error and rollback-on-error);
with continue-on-error the units that failed keep their old content and the rest is applied.
Every change of running yields a :class:`ConfigDiff` handed to the registered listeners
after the commit (in the daemon later, from the publisher of ``datastore_publish.py``),
and the escEvents it implies (CREATE_TENANT...) are appended to the event log in the same
transaction as the change (``_write``), so neither exists without the other.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from lxml import etree
from sqlalchemy import Engine, Table, and_, bindparam, delete, event, exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from esc_orch import failpoints
from esc_orch.model.backend import (
    Datastore,
    DefaultOperation,
    ErrorOption,
    TestOption,
)
from esc_orch.model.clock import Clock, utc_now
from esc_orch.model.config_events import config_events
from esc_orch.model.diff import ConfigDiff, diff_units
from esc_orch.model.edit import Operation, apply_edit, check_edit, mask_secrets
from esc_orch.model.errors import ErrorTag, RpcError, RpcErrors
from esc_orch.model.schema import ESC_NS, data_roots
from esc_orch.model.semantics import Vocabulary, check_config
from esc_orch.model.units import (
    UnitId,
    Wildcard,
    assemble,
    new_data,
    references_of,
    split,
    touched,
    unit_of_path,
)
from esc_orch.model.validate import check_types, validate_config
from esc_orch.store.datastore_publish import Holding, Publisher
from esc_orch.store.events import EventLog
from esc_orch.store.image import RunningImage
from esc_orch.store.secrets import KEY_FILE, SecretBox
from esc_orch.store.tables import (
    ConfigRefRow,
    ConfigUnitRow,
    MetaRow,
    OwedRunRow,
    make_engine,
    sqlite_url,
)

log = logging.getLogger(__name__)

RUNNING = Datastore.RUNNING.value
CANDIDATE = Datastore.CANDIDATE.value
DiffListener = Callable[[ConfigDiff], None]
StateProvider = Callable[[], etree._Element]
AcceptanceCheck = Callable[[ConfigDiff], Sequence[RpcError]]


_CHUNK = 400  # keys per IN (...): well under SQLite's bound-parameter limit


_UNITS = cast(Table, ConfigUnitRow.__table__)
_REFS = cast(Table, ConfigRefRow.__table__)
# Built once (statement construction cost more than SQLite's work on a small edit).
_DELETE_UNITS = delete(_UNITS).where(
    _UNITS.c.datastore == bindparam("ds"),
    _UNITS.c.kind == bindparam("kind"),
    _UNITS.c.key.in_(bindparam("keys", expanding=True)),
)
_DELETE_REFS = delete(_REFS).where(
    _REFS.c.datastore == bindparam("ds"),
    _REFS.c.src_kind == bindparam("kind"),
    _REFS.c.src_key.in_(bindparam("keys", expanding=True)),
)
_INSERT_UNITS = insert(_UNITS)
_INSERT_REFS = insert(_REFS)
_OWED = cast(Table, OwedRunRow.__table__)
_DELETE_OWED = delete(_OWED).where(
    _OWED.c.tenant == bindparam("t"), _OWED.c.deployment == bindparam("d")
)
_INSERT_OWED = insert(_OWED).values(
    tenant=bindparam("t"), deployment=bindparam("d"), txid=bindparam("txid")
)
_META = cast(Table, MetaRow.__table__)
_BUMP_TXID = (
    update(_META)
    .where(_META.c.name == "txid")
    .values(value=_META.c.value + 1)
    .returning(_META.c.value)
)


@dataclass(slots=True)
class _Group:
    """Edits run in one transaction by :meth:`SqlDatastore.run_group` (group commit)."""

    thread: int
    session: Session
    #: running as the group's edits so far left it (read by later edits of the group only).
    pending: dict[UnitId, bytes | None] = field(default_factory=dict)
    diffs: list[ConfigDiff] = field(default_factory=list)
    #: the units each accepted edit named, for the touch listeners after the commit.
    touched: list[frozenset[UnitId]] = field(default_factory=list)


class _OwnTransaction:
    """``with Session(...) as s, s.begin(): yield s`` as a class (see ``_transaction``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._begun = contextlib.ExitStack()

    def __enter__(self) -> Session:
        self._begun.enter_context(self._session)
        self._begun.enter_context(self._session.begin())
        return self._session

    def __exit__(self, *exc: object) -> bool:
        return bool(self._begun.__exit__(*exc))  # type: ignore[arg-type]


def _row_id(row: ConfigUnitRow) -> UnitId:
    return UnitId(row.kind, tuple(row.key.split("/")))


class SqlDatastore:
    """running + candidate configuration on SQLite (default) or PostgreSQL."""

    def __init__(self, *, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._lock = threading.RLock()
        self._listeners: list[DiffListener] = []
        #: Called with the units an edit of running named, changed or not (see add_touch_listener).
        self._touch_listeners: list[Callable[[frozenset[UnitId]], None]] = []
        self._state_providers: list[StateProvider] = []
        self._acceptance_checks: list[AcceptanceCheck] = []
        self._vocabulary = Vocabulary()
        #: The durable escEvent log of this database (append inside store transactions).
        self.events = EventLog(engine=engine, clock=clock)
        self._image = self._load_image()
        self._group: _Group | None = None
        self._publisher: Publisher[ConfigDiff | frozenset[UnitId]] | None = None

    def _pending(self) -> dict[UnitId, bytes | None] | None:
        """The open group's uncommitted running changes, seen by that group's thread only."""
        group = self._group
        if group is None or group.thread != threading.get_ident():
            return None
        return group.pending

    def _transaction(self) -> contextlib.AbstractContextManager[Session]:
        """The open group's session in its thread, else a transaction of its own.

        (Not a generator context manager: those rewrite the traceback of an exception
        passing through, which frozen error types refuse.)"""
        group = self._group
        if group is not None and group.thread == threading.get_ident():
            return contextlib.nullcontext(group.session)
        return _OwnTransaction(Session(self._engine))

    def run_group(self, thunks: Sequence[Callable[[], object]]) -> list[tuple[bool, object]]:
        """Run edits (thunks calling :meth:`edit_config`) one after the other in ONE
        transaction: each sees the ones before it, a refused one changes nothing, and the
        group is committed (made durable) once. Per thunk: (True, result) or (False, the
        RpcError/RpcErrors). Any other failure rolls the whole group back and is raised (no
        edit of the group was acknowledged). Listeners get the diffs after the commit."""
        results: list[tuple[bool, object]] = []
        with self._lock:
            group = _Group(thread=threading.get_ident(), session=Session(self._engine))
            with group.session, group.session.begin():
                self._group = group
                try:
                    for thunk in thunks:
                        try:
                            results.append((True, thunk()))
                        except (RpcError, RpcErrors) as exc:
                            results.append((False, exc))
                finally:
                    self._group = None
            for diff in group.diffs:
                self._publish(diff)
            for units in group.touched:
                self._publish(units)
        return results

    def _published(self, diff: ConfigDiff) -> None:
        group = self._group
        if group is not None and group.thread == threading.get_ident():
            group.diffs.append(diff)  # after the group's commit
        else:
            self._publish(diff)

    def _touch_published(self, units: frozenset[UnitId]) -> None:
        group = self._group
        if group is not None and group.thread == threading.get_ident():
            group.touched.append(units)  # after the group's commit, as its diffs
        else:
            self._publish(units)

    def _publish(self, item: ConfigDiff | frozenset[UnitId]) -> None:
        """Hand a committed diff (or the units an edit named) to the listeners: now, in this
        thread, or through the publisher once :meth:`defer_publication` set one up."""
        if self._publisher is not None:
            self._publisher.post(item)
        else:
            self._deliver(item)

    def _deliver(self, item: ConfigDiff | frozenset[UnitId]) -> None:
        if isinstance(item, ConfigDiff):
            self._notify(item)
        else:
            self._touched(item)

    def defer_publication(self, holding: Holding | None = None) -> None:
        """Call the listeners later, from a thread of their own, while edits keep coming
        (``datastore_publish.py`` says why and what stays guaranteed). Without it (tests,
        tools) they are called in the committing thread before the edit returns."""
        if self._publisher is None:
            self._publisher = Publisher(self._deliver, holding=holding or Holding())

    def publications_pending(self) -> bool:
        """Whether a committed change has not reached every listener yet."""
        return self._publisher is not None and self._publisher.pending()

    def flush_publications(self) -> None:
        """Deliver every committed change to the listeners now; return after."""
        if self._publisher is not None:
            self._publisher.flush()

    def _load_image(self) -> RunningImage:
        """running as committed in the database (this daemon is its only writer)."""
        with Session(self._engine) as session:
            rows = session.execute(
                select(ConfigUnitRow.kind, ConfigUnitRow.key, ConfigUnitRow.xml).where(
                    ConfigUnitRow.datastore == RUNNING
                )
            )
            units = {
                UnitId(kind, tuple(key.split("/"))): xml
                for kind, key, xml in rows
                if xml is not None
            }
            refs = [
                (UnitId(sk, tuple(sv.split("/"))), UnitId(dk, tuple(dv.split("/"))))
                for sk, sv, dk, dv in session.execute(
                    select(
                        ConfigRefRow.src_kind,
                        ConfigRefRow.src_key,
                        ConfigRefRow.dst_kind,
                        ConfigRefRow.dst_key,
                    ).where(ConfigRefRow.datastore == RUNNING)
                )
            ]
        return RunningImage(units=units, refs=refs)

    @classmethod
    def open(
        cls,
        *,
        data_dir: Path | None = None,
        url: str | None = None,
        clock: Clock = utc_now,
        key_file: Path | None = None,
    ) -> SqlDatastore:
        """The store of ``data_dir`` (SQLite) or ``url``; VIM secrets are encrypted with the
        key in ``key_file`` (default ``secrets.key`` in ``data_dir``; no data directory and
        no key file: stored in clear, for tests)."""
        if url is None:
            if data_dir is None:
                raise ValueError("give a data directory or a database URL")
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            url = sqlite_url(data_dir)
        if key_file is None and data_dir is not None:
            key_file = data_dir / KEY_FILE
        box = SecretBox.from_file(key_file) if key_file is not None else None
        return cls(engine=make_engine(url, secrets=box), clock=clock)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for maintenance tools and tests)."""
        return self._engine

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
        self._engine.dispose()

    def add_listener(self, listener: DiffListener) -> None:
        """Call ``listener`` with every non-empty diff of running, after it is durable (in
        the committing thread, or from the publisher after :meth:`defer_publication`)."""
        self._listeners.append(listener)

    def add_touch_listener(self, listener: Callable[[frozenset[UnitId]], None]) -> None:
        """Call ``listener`` with the units each accepted edit of running named, even when it
        changed nothing: an identical edit of a deployment that is not at its desired state
        re-arms it (issue 11, "nothing stuck")."""
        self._touch_listeners.append(listener)

    def _touched(self, ids: Iterable[UnitId]) -> None:
        units = frozenset(ids)
        for listener in list(self._touch_listeners):
            try:
                listener(units)
            except Exception:
                log.exception("touch listener failed")

    # ---------------------------------------------------------------- reading

    def _view_rows(
        self, session: Session, view: str, *, kind: str | None = None
    ) -> dict[UnitId, bytes]:
        """All units of a datastore view (candidate = running overlaid by candidate rows)."""
        units = self._image.snapshot(kind)
        pending = self._pending()
        for unit, xml in (pending or {}).items():
            if kind is None or unit.kind == kind:
                if xml is None:
                    units.pop(unit, None)
                else:
                    units[unit] = xml
        if view == CANDIDATE:
            overlay = select(ConfigUnitRow).where(ConfigUnitRow.datastore == CANDIDATE)
            if kind:
                overlay = overlay.where(ConfigUnitRow.kind == kind)
            for row in session.scalars(overlay):
                if row.xml is None:
                    units.pop(_row_id(row), None)
                else:
                    units[_row_id(row)] = row.xml
        return units

    def _load(
        self, session: Session, view: str, ids: Iterable[UnitId]
    ) -> dict[UnitId, bytes | None]:
        wanted = set(ids)
        out = self._image.load(wanted)
        pending = self._pending()
        if pending:
            out.update((u, pending[u]) for u in wanted if u in pending)
        if view != CANDIDATE:
            return out
        by_kind: dict[str, list[str]] = {}
        for unit in wanted:
            by_kind.setdefault(unit.kind, []).append(unit.text_key)
        for kind, keys in by_kind.items():
            for chunk_start in range(0, len(keys), _CHUNK):
                chunk = keys[chunk_start : chunk_start + _CHUNK]
                rows = session.scalars(
                    select(ConfigUnitRow).where(
                        ConfigUnitRow.datastore == CANDIDATE,
                        ConfigUnitRow.kind == kind,
                        ConfigUnitRow.key.in_(chunk),
                    )
                )
                for row in rows:
                    out[_row_id(row)] = row.xml
        return out

    def _expand(self, session: Session, view: str, wildcard: Wildcard) -> set[UnitId]:
        ids: set[UnitId] = set()
        for unit in self._view_rows(session, view, kind=wildcard.kind):
            if unit.key[: len(wildcard.prefix)] == wildcard.prefix:
                ids.add(unit)
        return ids

    def _referrers(self, session: Session, view: str, targets: Iterable[UnitId]) -> set[UnitId]:
        """Units of ``view`` holding a leafref to any of ``targets``."""
        if view == RUNNING:
            wanted = set(targets)
            referrers = self._image.referrers(wanted)
            for unit, xml in (self._pending() or {}).items():
                if xml is not None and references_of(unit, xml) & wanted:
                    referrers.add(unit)
                else:
                    referrers.discard(unit)
            return referrers
        found: set[UnitId] = set()
        for target in targets:
            cond = and_(
                ConfigRefRow.dst_kind == target.kind, ConfigRefRow.dst_key == target.text_key
            )
            running_refs = select(ConfigRefRow).where(ConfigRefRow.datastore == RUNNING, cond)
            if view == CANDIDATE:
                overlay = aliased(ConfigUnitRow)
                running_refs = running_refs.where(
                    ~exists().where(
                        overlay.datastore == CANDIDATE,
                        overlay.kind == ConfigRefRow.src_kind,
                        overlay.key == ConfigRefRow.src_key,
                    )
                )
            for ref in session.scalars(running_refs):
                found.add(UnitId(ref.src_kind, tuple(ref.src_key.split("/"))))
            if view == CANDIDATE:
                for ref in session.scalars(
                    select(ConfigRefRow).where(ConfigRefRow.datastore == CANDIDATE, cond)
                ):
                    found.add(UnitId(ref.src_kind, tuple(ref.src_key.split("/"))))
        return found

    def get_config(self, *, source: Datastore) -> etree._Element:
        if source not in (Datastore.RUNNING, Datastore.CANDIDATE):
            raise RpcError(tag=ErrorTag.INVALID_VALUE, message=f"no {source} datastore")
        if source is Datastore.RUNNING:
            return mask_secrets(assemble(self._image.snapshot().items()))
        with Session(self._engine) as session:
            units = self._view_rows(session, source.value)
        return mask_secrets(assemble(units.items()))

    def running_xml(self) -> bytes:
        """get-config of running, unfiltered, as the serialized children of ``<data>``.

        Built once per committed version and shared by every reader until the next commit;
        it never waits for an edit in progress.
        """
        return self._image.serialized(lambda units: mask_secrets(assemble(units.items())))

    def running_xml_cached(self) -> bytes | None:
        """:meth:`running_xml` if already built for the current version (cheap), else None."""
        return self._image.serialized_cached()

    def get_state(self) -> etree._Element:
        """``esc_datamodel/opdata``, filled by the registered state providers."""
        data = new_data()
        top = etree.SubElement(data, f"{{{ESC_NS}}}esc_datamodel")
        opdata = etree.SubElement(top, f"{{{ESC_NS}}}opdata")
        for provider in list(self._state_providers):
            opdata.append(provider())
        return data

    def add_state_provider(self, provider: StateProvider) -> None:
        """Add a child of ``opdata`` (e.g. ``vim_connectors``) produced on every ``get``."""
        self._state_providers.append(provider)

    def add_acceptance_check(self, check: AcceptanceCheck) -> None:
        """Run ``check`` on the diff of every change of running before it is written.

        For rules beyond YANG that need live state (e.g. a VIM connector known to be down):
        any error refuses the whole edit or commit, and nothing is written.
        """
        self._acceptance_checks.append(check)

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """What the daemon can run (collector types, rule scripts) for the edit-time checks."""
        self._vocabulary = vocabulary

    def _acceptance_errors(
        self, before: dict[UnitId, bytes | None], after: dict[UnitId, bytes | None]
    ) -> tuple[list[RpcError], ConfigDiff | None]:
        """The acceptance checks' errors, and the preview diff they saw (its parsed models
        are reused by the committed diff, so a unit is parsed once per edit, not per check
        and listener)."""
        if not self._acceptance_checks:
            return [], None
        preview = diff_units(before, after, txid=0)
        if preview.empty:
            return [], preview
        errors = [error for check in self._acceptance_checks for error in check(preview)]
        return errors, preview

    def running_units(self, kind: str) -> dict[UnitId, bytes]:
        """All running units of one kind (for the reconciler's resync)."""
        return self._image.snapshot(kind)

    def candidate_is_dirty(self) -> bool:
        with Session(self._engine) as session:
            return (
                session.scalar(
                    select(ConfigUnitRow.key).where(ConfigUnitRow.datastore == CANDIDATE).limit(1)
                )
                is not None
            )

    # ---------------------------------------------------------------- editing

    def edit_config(
        self,
        *,
        target: Datastore,
        config: etree._Element,
        default_operation: DefaultOperation = DefaultOperation.MERGE,
        test_option: TestOption = TestOption.TEST_THEN_SET,
        error_option: ErrorOption = ErrorOption.STOP_ON_ERROR,
    ) -> ConfigDiff | None:
        """Apply an edit; return the diff of running when ``target`` is running."""
        if target not in (Datastore.RUNNING, Datastore.CANDIDATE):
            raise RpcError(
                tag=ErrorTag.OPERATION_NOT_SUPPORTED, message=f"cannot edit the {target} datastore"
            )
        default_op = Operation(default_operation.value)
        config = copy.deepcopy(config)
        errors = check_edit(config, default_operation=default_op)
        if not errors:
            errors = check_types(_strip_operations(config))
        if errors:
            raise RpcErrors(errors)
        continue_on_error = error_option is ErrorOption.CONTINUE_ON_ERROR
        view = target.value
        with self._lock, self._transaction() as session:
            ids, wildcards = touched(config, default_operation=default_op)
            for wildcard in wildcards:
                ids |= self._expand(session, view, wildcard)
            ids |= {p for p in (u.parent for u in list(ids)) if p is not None}
            before = self._load(session, view, ids)
            data = assemble((u, x) for u, x in before.items() if x is not None)
            result = apply_edit(
                data, config, default_operation=default_op, continue_on_error=continue_on_error
            )
            if result.errors and not continue_on_error:
                raise RpcErrors(result.errors)
            after: dict[UnitId, bytes | None] = dict.fromkeys(before)
            after.update(split(data))
            errors = list(result.errors)
            validate = target is Datastore.RUNNING or test_option is not TestOption.SET
            if validate:
                after, validation_errors = self._validated(
                    session, view, before, after, continue_on_error=continue_on_error
                )
                errors += validation_errors
            if errors and not continue_on_error:
                raise RpcErrors(errors)
            if target is Datastore.RUNNING:
                refused, preview = self._acceptance_errors(before, after)
                if refused:
                    raise RpcErrors(errors + refused)
            else:
                preview = None
            if test_option is TestOption.TEST_ONLY:
                if errors:
                    raise RpcErrors(errors)
                return None
            diff = self._write(session, view, before, after, preview=preview)
        if diff is not None and not diff.empty:
            self._published(diff)
        if target is Datastore.RUNNING:
            self._touch_published(frozenset(before))
        if errors:
            raise RpcErrors(errors)
        return diff

    def _validated(
        self,
        session: Session,
        view: str,
        before: dict[UnitId, bytes | None],
        after: dict[UnitId, bytes | None],
        *,
        continue_on_error: bool,
    ) -> tuple[dict[UnitId, bytes | None], list[RpcError]]:
        """Validate ``after`` with its context; with continue-on-error revert failing units."""
        reported: list[RpcError] = []
        current = dict(after)
        for _attempt in range(len(current) + 1):
            errors = self._validate_units(session, view, current)
            if not errors:
                return current, reported
            reported += errors
            if not continue_on_error:
                return current, reported
            culprits = {unit_of_path(e.path) for e in errors}
            reverted = False
            for unit in culprits:
                if unit is not None and unit in current and current[unit] != before.get(unit):
                    current[unit] = before.get(unit)
                    reverted = True
            if not reverted:
                current = dict(before)
        return current, reported

    def _validate_units(
        self, session: Session, view: str, units: dict[UnitId, bytes | None]
    ) -> list[RpcError]:
        present = {u: x for u, x in units.items() if x is not None}
        context: set[UnitId] = set()
        for unit, xml in present.items():
            context |= references_of(unit, xml)
        deleted = [u for u, x in units.items() if x is None]
        if deleted:
            context |= self._referrers(session, view, deleted)
        loaded: dict[UnitId, bytes] = {}
        # A referrer of a deleted unit (a deployment on a deleted VIM connector) is validated
        # too, so what it references in turn (its flavor) must be loaded, or it fails for the
        # wrong reason: the closure of references, excluding what this change holds.
        while True:
            context -= set(units) | set(loaded)
            context |= {p for p in (u.parent for u in list(context)) if p is not None}
            context -= set(units) | set(loaded)
            if not context:
                break
            new = {u: x for u, x in self._load(session, view, context).items() if x is not None}
            loaded.update(new)
            context = set()
            for unit, xml in new.items():
                context |= references_of(unit, xml)
        # The semantic checks resolve the default VIM connector among all of them (few).
        checked = {u for u in present if u.kind in ("deployment", "vim_connector")}
        if checked:
            for unit, xml in self._view_rows(session, view, kind="vim_connector").items():
                if unit not in units:
                    loaded.setdefault(unit, xml)
        data = assemble([*present.items(), *loaded.items()])
        errors = validate_config(data)
        if errors or not checked:
            return errors
        return check_config(
            data,
            vocabulary=self._vocabulary,
            deployments={u.key for u in checked if u.kind == "deployment"},  # type: ignore[misc]
            connectors={u.key[0] for u in checked if u.kind == "vim_connector"},
        )

    def _write(
        self,
        session: Session,
        view: str,
        before: dict[UnitId, bytes | None],
        after: dict[UnitId, bytes | None],
        *,
        preview: ConfigDiff | None = None,
    ) -> ConfigDiff | None:
        changed = {u: x for u, x in after.items() if x != before.get(u)}
        if view == CANDIDATE:
            running = self._load(session, RUNNING, changed)
            overlay = {u: x for u, x in changed.items() if x != running.get(u)}
            self._replace_rows(session, CANDIDATE, changed, overlay)
            return None
        txid = self._next_txid(session) if changed else 0
        pending = self._pending()
        if pending is not None:
            pending.update(changed)
        if changed:
            # Registered before the event log's hook: the image shows the change before
            # its events are published.
            event.listen(session, "after_commit", lambda _s: self._image.apply(changed), once=True)
        self._replace_rows(
            session, RUNNING, changed, {u: x for u, x in changed.items() if x is not None}
        )
        diff = diff_units({u: before.get(u) for u in changed}, dict(changed.items()), txid=txid)
        if preview is not None and _same_changes(preview, diff):
            diff = ConfigDiff(txid=txid, changes=preview.changes)  # models parsed once
        # Same transaction as the change: published by the log after the commit.
        self.events.append(session, config_events(diff))
        # The service event of every changed deployment is owed from this very transaction
        # until the lifecycle logs it (store/journal.py settles it): a crash between the
        # reply and the run cannot lose it. (Core statements on the unit keys: the ORM's
        # merge and parsing the deployments' models cost more than the edit's SQL.)
        owed = [
            {"t": c.unit.key[0], "d": c.unit.key[1], "txid": txid}
            for c in diff.of_kind("deployment")
        ]
        if owed:
            conn = session.connection()
            conn.execute(_DELETE_OWED, owed)
            conn.execute(_INSERT_OWED, owed)
        return diff

    def _replace_rows(
        self,
        session: Session,
        datastore: str,
        units: Iterable[UnitId],
        rows: dict[UnitId, bytes | None],
    ) -> None:
        """Delete the rows (and leafref rows) of ``units``, then insert ``rows``.

        A handful of statements whatever the number of units (executemany), so an edit of N
        units costs O(N) in the database; a ``None`` in ``rows`` is a candidate tombstone.
        """
        conn = session.connection()
        by_kind: dict[str, list[str]] = {}
        for unit in units:
            by_kind.setdefault(unit.kind, []).append(unit.text_key)
        for kind, keys in by_kind.items():
            for start in range(0, len(keys), _CHUNK):
                params = {"ds": datastore, "kind": kind, "keys": keys[start : start + _CHUNK]}
                conn.execute(_DELETE_UNITS, params)
                conn.execute(_DELETE_REFS, params)
        if not rows:
            return
        unit_rows: list[dict[str, object]] = []
        ref_rows: list[dict[str, object]] = []
        for unit, xml in rows.items():
            parent = unit.parent
            unit_rows.append(
                {
                    "datastore": datastore,
                    "kind": unit.kind,
                    "key": unit.text_key,
                    "parent_key": parent.text_key if parent else None,
                    "xml": xml,
                }
            )
            if xml is None:
                continue
            ref_rows.extend(
                {
                    "datastore": datastore,
                    "src_kind": unit.kind,
                    "src_key": unit.text_key,
                    "dst_kind": target.kind,
                    "dst_key": target.text_key,
                }
                for target in references_of(unit, xml)
            )
        conn.execute(_INSERT_UNITS, unit_rows)
        if ref_rows:
            conn.execute(_INSERT_REFS, ref_rows)

    def _next_txid(self, session: Session) -> int:
        value = session.connection().execute(_BUMP_TXID).scalar()
        if value is not None:
            return int(value)
        row = session.get(MetaRow, "txid")
        if row is None:
            row = MetaRow(name="txid", value=0)
            session.add(row)
        row.value += 1
        return row.value

    def _notify(self, diff: ConfigDiff) -> None:
        failpoints.hit("datastore.after-commit")
        for listener in list(self._listeners):
            try:
                listener(diff)
            except Exception:
                log.exception("commit listener failed for txid %s", diff.txid)

    # ---------------------------------------------------------------- candidate

    def validate(self, *, source: Datastore | etree._Element) -> None:
        if isinstance(source, etree._Element):
            errors = check_edit(copy.deepcopy(source), default_operation=Operation.MERGE)
            if not errors:
                errors = validate_config(_strip_operations(source))
            if not errors:
                errors = check_config(_strip_operations(source), vocabulary=self._vocabulary)
            if errors:
                raise RpcErrors(errors)
            return
        if source is Datastore.RUNNING:
            return  # running is only ever written valid
        with Session(self._engine) as session:
            overlay = self._overlay(session)
            errors = self._validate_units(session, CANDIDATE, overlay)
        if errors:
            raise RpcErrors(errors)

    def _overlay(self, session: Session) -> dict[UnitId, bytes | None]:
        rows = session.scalars(select(ConfigUnitRow).where(ConfigUnitRow.datastore == CANDIDATE))
        return {_row_id(row): row.xml for row in rows}

    def commit(self) -> ConfigDiff:
        with self._lock, Session(self._engine) as session, session.begin():
            overlay = self._overlay(session)
            errors = self._validate_units(session, CANDIDATE, overlay)
            if errors:
                raise RpcErrors(errors)
            before = self._load(session, RUNNING, overlay)
            refused, preview = self._acceptance_errors(before, overlay)
            if refused:
                raise RpcErrors(refused)
            diff = self._write(session, RUNNING, before, overlay, preview=preview)
            session.execute(delete(ConfigUnitRow).where(ConfigUnitRow.datastore == CANDIDATE))
            session.execute(delete(ConfigRefRow).where(ConfigRefRow.datastore == CANDIDATE))
        assert diff is not None
        if not diff.empty:
            self._publish(diff)
        self._publish(frozenset(overlay))
        return diff

    def discard_changes(self) -> None:
        with self._lock, Session(self._engine) as session, session.begin():
            session.execute(delete(ConfigUnitRow).where(ConfigUnitRow.datastore == CANDIDATE))
            session.execute(delete(ConfigRefRow).where(ConfigRefRow.datastore == CANDIDATE))

    def copy_config(self, *, target: Datastore, source: Datastore | etree._Element) -> None:
        """Replace ``target`` with ``source`` (running→candidate is a discard)."""
        if target is Datastore.CANDIDATE and source is Datastore.RUNNING:
            self.discard_changes()
            return
        if target is Datastore.RUNNING and source is Datastore.CANDIDATE:
            self.commit()
            return
        if isinstance(source, etree._Element) and target in (
            Datastore.RUNNING,
            Datastore.CANDIDATE,
        ):
            self._replace_all(target, source)
            return
        raise RpcError(
            tag=ErrorTag.OPERATION_NOT_SUPPORTED,
            message=f"copy-config from {_name(source)} to {target} is not supported",
        )

    def _replace_all(self, target: Datastore, config: etree._Element) -> None:
        config = copy.deepcopy(config)
        present = {etree.QName(child).localname for child in config if isinstance(child.tag, str)}
        for root in data_roots().values():
            if root.name not in present and root.config:
                etree.SubElement(config, f"{{{ESC_NS}}}{root.name}")
        self.edit_config(target=target, config=config, default_operation=DefaultOperation.REPLACE)

    def delete_config(self, *, target: Datastore) -> None:
        if target is Datastore.CANDIDATE:
            self.discard_changes()
            return
        raise RpcError(
            tag=ErrorTag.OPERATION_NOT_SUPPORTED,
            message=f"the {target} datastore cannot be deleted",
        )


def _same_changes(one: ConfigDiff, other: ConfigDiff) -> bool:
    """Whether two diffs change the same units from and to the same bytes."""
    return len(one.changes) == len(other.changes) and all(
        a.unit == b.unit and a.before == b.before and a.after == b.after
        for a, b in zip(one.changes, other.changes, strict=True)
    )


def _name(source: Datastore | etree._Element) -> str:
    return str(source) if isinstance(source, Datastore) else "inline config"


def _strip_operations(config: etree._Element) -> etree._Element:
    """A copy without NETCONF attributes, for libyang's type check."""
    stripped = copy.deepcopy(config)
    for element in stripped.iter():
        for attr in [str(a) for a in element.attrib]:
            if attr.startswith("{urn:ietf:params:xml:ns:netconf:base:1.0}") or attr.startswith(
                "{urn:ietf:params:xml:ns:yang:1}"
            ):
                del element.attrib[attr]
    etree.cleanup_namespaces(stripped)
    return stripped
