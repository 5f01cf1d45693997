"""VIM errors classed by what the caller can do about them, not by where they came from.

The reactor retries a :class:`TemporaryVimError` after ``retry_after`` seconds, gives up on a
:class:`PermanentVimError`, raises an alarm on a :class:`VimAuthError`, treats
:class:`VimNotFound` as an observation ("the VM is not there") and never calls an operation
that raised :class:`CapabilityNotSupported` again on that connector.
"""

from __future__ import annotations


class VimError(Exception):
    """Base of every error a connector raises."""


class TemporaryVimError(VimError):
    """Retrying later may succeed (5xx, timeout, connection refused, host down)."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentVimError(VimError):
    """Retrying the same request will fail the same way (bad input, TLS failure...)."""


class VimConflict(PermanentVimError):
    """The VIM's current state forbids the operation (disk locked elsewhere, VM running...)."""


class VimCapacityError(PermanentVimError):
    """The host has not enough memory, CPUs or disk for the request."""


class VimAuthError(VimError):
    """The VIM rejected our credentials: needs an operator, not a retry."""


class VimNotFound(VimError):
    """The named VM (or resource) does not exist on this VIM."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{name!r} not found")
        self.name = name


class CapabilityNotSupported(VimError):
    """The connector does not declare the capability the operation needs."""

    def __init__(self, capability: str, connector: str) -> None:
        super().__init__(f"connector {connector!r} does not support {capability!r}")
        self.capability = capability
        self.connector = connector
