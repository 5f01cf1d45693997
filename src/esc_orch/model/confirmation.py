"""An operator's statement that a VIM connector's host is down: who said so, and when.

One of the proofs that let a move start a VM elsewhere while its old host does not answer
(:mod:`esc_orch.reconcile.proof`); made by the ``eo:confirm-host-down`` RPC, kept durably by
the store (``store/confirmations.py``), shown in opdata.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HostDownConfirmation:
    """An operator's statement that ``host`` (a VIM connector id) is down, who and when."""

    host: str
    by: str
    at: datetime
