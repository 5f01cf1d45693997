"""Faults of a running host that change without a restart: a slow or failing link, a new password.

A real CSP host can become slow or start answering 5xx in the middle of an operation, and an
administrator can change its password while an orchestrator is using the old one (from then
on every request is answered 401). The emulator models both with files it reads again
whenever they change (their modification time or size), checked at every request:

* ``--fault-file F``: a JSON object ``{"latency_ms": N, "error_rate": F}`` (either key may be
  left out: the command-line value then applies); a missing or empty file means the
  command-line values. An unreadable file keeps the last good values and says so once on
  stderr.
* ``--password-file F``: its first line is the password, now also when it is rewritten.

Nothing here knows HTTP: :mod:`esc_orch.csp_sim.api` asks :class:`LiveSettings` for the values
of the moment.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@dataclass
class LiveSettings:
    """Latency, error rate and password now (files re-read when they change)."""

    password: str
    latency_s: float = 0.0
    error_rate: float = 0.0
    fault_file: Path | None = None
    password_file: Path | None = None

    def __post_init__(self) -> None:
        self._base = (self.latency_s, self.error_rate)
        self._fault_stamp: tuple[int, int] | None = None
        self._password_stamp = _stamp(self.password_file)
        self.refresh()

    def refresh(self) -> None:
        """Read the fault and password files again if they changed since the last look."""
        stamp = _stamp(self.fault_file)
        if stamp != self._fault_stamp:
            self._fault_stamp = stamp
            self._load_faults()
        stamp = _stamp(self.password_file)
        if stamp != self._password_stamp and self.password_file is not None:
            self._password_stamp = stamp
            try:
                lines = self.password_file.read_text().splitlines()
            except OSError:
                lines = []
            if lines and lines[0]:
                self.password = lines[0]

    def _load_faults(self) -> None:
        latency, rate = self._base
        assert self.fault_file is not None
        try:
            text = self.fault_file.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            print(f"esc-csp-sim: fault file unreadable, kept: {exc}", file=sys.stderr, flush=True)
            return
        if text.strip():
            try:
                doc = json.loads(text)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                latency = float(doc.get("latency_ms", latency * 1000.0)) / 1000.0
                rate = float(doc.get("error_rate", rate))
                if latency < 0 or not 0 <= rate <= 1:
                    raise ValueError("latency_ms must be >= 0 and error_rate within [0, 1]")
            except (ValueError, TypeError) as exc:
                print(f"esc-csp-sim: fault file ignored: {exc}", file=sys.stderr, flush=True)
                return
        self.latency_s, self.error_rate = latency, rate
