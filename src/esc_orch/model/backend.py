"""What the NETCONF layer needs from the configuration datastore, as a typed port.

Defined in the model layer so the store (which implements it) need not import the northbound.

The northbound never imports the store: it is handed an object satisfying
:class:`ConfigBackend` (the SQLAlchemy-backed datastore in production). All methods are
synchronous and fast (they run in a worker thread when called from the event loop); failures
are raised as :class:`esc_orch.model.errors.RpcError` or ``RpcErrors``.

Element conventions: a "config" argument is the NETCONF ``<config>`` element itself (its
children are top-level data nodes such as ``esc:esc_datamodel``); a returned tree is a
``<data>`` element in the NETCONF base namespace whose children are top-level data nodes.
Secrets (VIM credentials) are never returned in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from lxml import etree


class Datastore(StrEnum):
    RUNNING = "running"
    CANDIDATE = "candidate"
    STARTUP = "startup"


class DefaultOperation(StrEnum):
    MERGE = "merge"
    REPLACE = "replace"
    NONE = "none"


class TestOption(StrEnum):
    TEST_THEN_SET = "test-then-set"
    SET = "set"
    TEST_ONLY = "test-only"


class ErrorOption(StrEnum):
    STOP_ON_ERROR = "stop-on-error"
    CONTINUE_ON_ERROR = "continue-on-error"
    ROLLBACK_ON_ERROR = "rollback-on-error"


class ConfigBackend(Protocol):
    """The configuration datastore as seen by NETCONF operations."""

    def get_config(self, *, source: Datastore) -> etree._Element:
        """The whole configuration of ``source`` as a ``<data>`` element (secrets masked)."""
        ...

    def get_state(self) -> etree._Element:
        """Operational data (``esc_datamodel/opdata``) as a ``<data>`` element."""
        ...

    def edit_config(
        self,
        *,
        target: Datastore,
        config: etree._Element,
        default_operation: DefaultOperation = DefaultOperation.MERGE,
        test_option: TestOption = TestOption.TEST_THEN_SET,
        error_option: ErrorOption = ErrorOption.STOP_ON_ERROR,
    ) -> object:
        """Apply an RFC 6241 edit to ``target``; a running edit is committed at once.

        What it returns (the SQL store returns the commit's diff) is ignored by NETCONF."""
        ...

    def validate(self, *, source: Datastore | etree._Element) -> None:
        """Validate a datastore or an inline ``<config>`` element."""
        ...

    def commit(self) -> object:
        """Make the candidate the running configuration, atomically."""
        ...

    def discard_changes(self) -> None:
        """Reset the candidate to the running configuration."""
        ...

    def candidate_is_dirty(self) -> bool:
        """True when the candidate holds uncommitted changes (a lock is then refused)."""
        ...

    def copy_config(self, *, target: Datastore, source: Datastore | etree._Element) -> None:
        """Replace ``target`` wholesale with ``source``."""
        ...

    def delete_config(self, *, target: Datastore) -> None:
        """Delete a datastore (only meaningful for ``startup``; running cannot be deleted)."""
        ...


@runtime_checkable
class GroupCommitBackend(ConfigBackend, Protocol):
    """A backend that commits several edit-configs in one durable transaction.

    ``run_group`` runs the thunks (each calling :meth:`ConfigBackend.edit_config`) one after
    the other, each seeing the ones before it, commits once and returns per thunk
    ``(True, result)`` or ``(False, the RpcError/RpcErrors)``; any other failure rolls the
    whole group back and is raised. The NETCONF core (``northbound/group.py``) uses it to
    answer edits that queued meanwhile with one commit.
    """

    def run_group(self, thunks: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]: ...


@runtime_checkable
class RunningSnapshotBackend(ConfigBackend, Protocol):
    """A backend that serves unfiltered get-config of running already serialized.

    ``running_xml`` is the children of ``<data>`` (secrets masked) for the last committed
    version, built once per version and never waiting for an edit in progress;
    ``running_xml_cached`` is the same if it is already built (cheap enough for the event
    loop), else None.
    """

    def running_xml(self) -> bytes: ...

    def running_xml_cached(self) -> bytes | None: ...


@runtime_checkable
class PublishingBackend(ConfigBackend, Protocol):
    """A backend whose commit listeners (the lifecycle) may learn of a change after the edit
    was answered. ``flush_publications`` delivers every committed change now and returns
    after; the NETCONF core calls it before operations that read what the listeners keep
    (``get``, actions), so they see every acknowledged edit."""

    def publications_pending(self) -> bool: ...

    def flush_publications(self) -> None: ...
