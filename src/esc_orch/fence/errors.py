"""Fence failures as values with their facts: what went wrong, on which host, retryable or not.

A failed fence never counts as proof. The reactor keeps the move waiting (retrying what may
pass) and shows the failure to people; the sentence they read is rendered by the caller from
these facts (:meth:`FenceFailure.summary` is a plain default).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FenceFailureKind(StrEnum):
    UNREACHABLE = "unreachable"  # the controller does not answer (retry may pass)
    AUTH = "auth"  # the controller rejected our credentials
    WRONG_HOST = "wrong-host"  # the controller belongs to another host: nothing was done
    NOT_CONFIRMED = "not-confirmed"  # power off was asked but the host is not reported off
    REFUSED = "refused"  # the controller answered with an error
    MISCONFIGURED = "misconfigured"  # the agent's configuration is unusable


RETRYABLE = frozenset({FenceFailureKind.UNREACHABLE, FenceFailureKind.NOT_CONFIRMED})


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceFailure:
    kind: FenceFailureKind
    agent_id: str
    host: str
    detail: str

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def summary(self) -> str:
        return f"fencing {self.host} with agent {self.agent_id} failed ({self.kind}): {self.detail}"


class FenceError(Exception):
    """Raised by a fence agent; ``failure`` holds the facts."""

    def __init__(self, failure: FenceFailure) -> None:
        super().__init__(failure.summary())
        self.failure = failure


class UnknownFenceAgentType(LookupError):
    """No installed fence agent has this type."""

    def __init__(self, type_name: str, known: list[str]) -> None:
        shown = ", ".join(known) or "none installed"
        super().__init__(f"unknown fence agent type {type_name!r} (known types: {shown})")
        self.type_name = type_name
        self.known = known
