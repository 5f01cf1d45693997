"""The running configuration in memory: what reads and edits see, without a database trip.

Why: every get-config read all rows of running through the ORM and every edit loaded the
units it touched with SQL, all under the one datastore mutex, so a read waited behind an edit
in progress and paid for the database. The daemon is the only writer of its database (the
datastore mutex is in-process already), so running is held here as well: unit bytes and the
reverse leafref index, loaded once at start-up and changed only *after* a transaction that
wrote running has committed (the datastore registers :meth:`RunningImage.apply` as an
``after_commit`` hook of that transaction). The database stays the durable copy; a crash
loses nothing, the image is rebuilt from it at the next start.

Reads take a snapshot (a shallow copy of a dict, C speed) under a lock held for microseconds,
so a read never waits for an edit being validated or written. The whole running tree, as
get-config sends it (secrets masked), is serialized once per version and reused until the next
commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from lxml import etree

from esc_orch.model.units import UnitId, references_of


class RunningImage:
    """running's units and who references whom, as of the last committed transaction."""

    def __init__(
        self, *, units: Mapping[UnitId, bytes], refs: Iterable[tuple[UnitId, UnitId]]
    ) -> None:
        self._lock = threading.Lock()
        self._units: dict[UnitId, bytes] = dict(units)
        self._referrers: dict[UnitId, set[UnitId]] = {}
        for src, dst in refs:
            self._referrers.setdefault(dst, set()).add(src)
        self._version = 0
        self._serialized: tuple[int, bytes] | None = None

    @property
    def version(self) -> int:
        """Incremented by every applied change (a cache key for what is built from it)."""
        return self._version

    def snapshot(self, kind: str | None = None) -> dict[UnitId, bytes]:
        """All units (of ``kind``), as one consistent version."""
        with self._lock:
            units = dict(self._units)
        if kind is None:
            return units
        return {u: x for u, x in units.items() if u.kind == kind}

    def load(self, ids: Iterable[UnitId]) -> dict[UnitId, bytes | None]:
        with self._lock:
            return {unit: self._units.get(unit) for unit in ids}

    def referrers(self, targets: Iterable[UnitId]) -> set[UnitId]:
        """Units holding a leafref to any of ``targets``."""
        found: set[UnitId] = set()
        with self._lock:
            for target in targets:
                found |= self._referrers.get(target, set())
        return found

    def apply(self, changed: Mapping[UnitId, bytes | None]) -> None:
        """Take a committed change of running (``None`` = deleted)."""
        with self._lock:
            for unit, xml in changed.items():
                old = self._units.pop(unit, None)
                if old is not None:
                    for target in references_of(unit, old):
                        sources = self._referrers.get(target)
                        if sources is not None:
                            sources.discard(unit)
                            if not sources:
                                del self._referrers[target]
                if xml is not None:
                    self._units[unit] = xml
                    for target in references_of(unit, xml):
                        self._referrers.setdefault(target, set()).add(unit)
            self._version += 1

    def serialized_cached(self) -> bytes | None:
        """What :meth:`serialized` returns, if it is built for the current version."""
        with self._lock:
            cached = self._serialized
            return cached[1] if cached is not None and cached[0] == self._version else None

    def serialized(self, build: Callable[[dict[UnitId, bytes]], etree._Element]) -> bytes:
        """The children of ``build(snapshot)`` serialized, cached for the current version."""
        with self._lock:
            version = self._version
            cached = self._serialized
            units = None if cached is not None and cached[0] == version else dict(self._units)
        if units is None:
            assert cached is not None
            return cached[1]
        data = build(units)
        text = b"".join(etree.tostring(child, with_tail=False) for child in data)
        with self._lock:
            if self._version == version:
                self._serialized = (version, text)
        return text
