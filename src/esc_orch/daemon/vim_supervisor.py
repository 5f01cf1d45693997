"""Keeps watch on the configured VIM connectors: reachable, credentials accepted, or not.

A VIM connector is configuration (``esc_system_config/vim_connectors``); whether it works is
state. When a connector is created or changed by a commit, and periodically afterwards, the
supervisor asks it to describe its host. Each check that changes a connector's state is
reported as a VIM_CONNECTION_STATE escEvent; the last result is visible with ``get`` under
``esc_datamodel/opdata/vim_connectors``; and a deployment that would place VMs on a
connector known to be down is refused at acceptance (reference §2) instead of failing later.

It checks through the daemon's one :class:`~esc_orch.daemon.connectors.ConnectorPool` (the
connectors the reactor uses) and its states are the daemon's one answer to "is this VIM up?".
:meth:`VimSupervisor.recheck` checks a connector at once, so a host that came back need not
wait for the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from esc_orch import metrics
from esc_orch.daemon.connectors import ConnectorFactory, ConnectorPool
from esc_orch.model.clock import Clock
from esc_orch.model.config import VimConnector, default_connector
from esc_orch.model.confirmation import HostDownConfirmation
from esc_orch.model.convert import unit_model
from esc_orch.model.diff import ChangeKind, ConfigDiff
from esc_orch.model.errors import ErrorTag, RpcError
from esc_orch.model.events import EscEvent, EventStatus, EventType, LoggedEvent, format_event_time
from esc_orch.model.schema import EO_NS, ESC_NS, ESC_PREFIX
from esc_orch.vim.errors import VimAuthError, VimError
from esc_orch.vim.metered import create_metered_connector as create_connector

log = logging.getLogger(__name__)

EventEmitter = Callable[[Sequence[EscEvent]], object]


class ConnectionStatus(StrEnum):
    """``opdata/vim_connectors/vim_connector/status`` of yang/esc.yang."""

    SUCCESSFUL = "CONNECTION_SUCCESSFUL"
    FAILED = "CONNECTION_FAILED"
    UNKNOWN = "CONNECTION_UNKNOWN"


@dataclass(frozen=True, slots=True)
class ConnectorState:
    id: str
    status: ConnectionStatus
    message: str | None
    last_checked: datetime | None


class VimSupervisor:
    """Checks connectors, remembers their state, reports changes, guards acceptance."""

    def __init__(
        self,
        *,
        emit: EventEmitter,
        clock: Clock,
        pool: ConnectorPool | None = None,
        factory: ConnectorFactory = create_connector,
        timeout: float = 10.0,
        interval: float = 60.0,
        failed_interval: float = 0.5,
    ) -> None:
        self._emit = emit
        self._clock = clock
        self.pool = pool if pool is not None else ConnectorPool(factory=factory)
        self._timeout = timeout
        self._interval = interval
        self._failed_interval = min(failed_interval, interval)
        self._models: dict[str, VimConnector] = {}  # for the default connector
        self._states: dict[str, ConnectorState] = {}
        #: What the event log last said of each connector (up or failed): a check reports a
        #: VIM_CONNECTION_STATE only when it differs, so a restart with nothing changed is quiet.
        self._reported: dict[str, ConnectionStatus] = {}
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Called (on the loop) when a connector that had failed is found healthy again: the
        #: lifecycle reconciles the work on it at once (set by the wiring).
        self.on_up: Callable[[str], None] | None = None
        #: The operators' host-down confirmations, for opdata (set by the wiring).
        self.confirmations: Callable[[], Mapping[str, HostDownConfirmation]] | None = None

    # ---------------------------------------------------------------- configuration

    def load(
        self,
        connectors: Sequence[VimConnector],
        *,
        reported: Mapping[str, ConnectionStatus] | None = None,
    ) -> None:
        """The running connectors at start-up: all get checked first thing. ``reported``: what
        the durable event log last said of each (:func:`last_reported`)."""
        ids = {model.id for model in connectors}
        self._reported.update({k: v for k, v in (reported or {}).items() if k in ids})
        for model in connectors:
            self._configure(model.id, model)
            self._states.setdefault(
                model.id, ConnectorState(model.id, ConnectionStatus.UNKNOWN, None, None)
            )
            metrics.connector_status(connector=model.id, status=self._states[model.id].status)
            self._pending.add(model.id)
        self._wake.set()

    def on_commit(self, diff: ConfigDiff) -> None:
        """Datastore listener (any thread): recheck created/changed connectors, drop deleted."""
        changed: list[tuple[str, VimConnector | None]] = [
            (c.id, c.after) for c in diff.vim_connectors()
        ]
        if not changed:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._apply_changes, changed)
        else:
            self._apply_changes(changed)

    def _apply_changes(self, changed: list[tuple[str, VimConnector | None]]) -> None:
        for connector_id, model in changed:
            self._configure(connector_id, model)
            self._reported.pop(connector_id, None)  # an edited connector is reported afresh
            if model is None:
                self._states.pop(connector_id, None)
                metrics.connector_status(connector=connector_id, status=None)
                self._pending.discard(connector_id)
                continue
            self._states[connector_id] = ConnectorState(
                connector_id, ConnectionStatus.UNKNOWN, None, None
            )
            metrics.connector_status(connector=connector_id, status=ConnectionStatus.UNKNOWN)
            self._pending.add(connector_id)
        self._wake.set()

    def _configure(self, connector_id: str, model: VimConnector | None) -> None:
        self.pool.configure(connector_id, model)
        if model is None:
            self._models.pop(connector_id, None)
        else:
            self._models[connector_id] = model

    # ---------------------------------------------------------------- checking

    def suspect(self, connector_id: str) -> None:
        """A run found ``connector_id`` silent (on the loop): check it now unless it is known
        down already, so a host that died between full checks is probed every
        ``failed_interval`` from now on and its return (with a stale copy) is seen at once."""
        state = self._states.get(connector_id)
        if state is None or state.status is ConnectionStatus.FAILED:
            return
        if connector_id not in self._pending:
            self._pending.add(connector_id)
            self._wake.set()

    async def recheck(self, connector_id: str) -> ConnectorState | None:
        """Check ``connector_id`` now, outside the interval (a host is back: say so at once)."""
        return await self.check(connector_id)

    async def check(self, connector_id: str) -> ConnectorState | None:
        """Describe the connector's host once; record and report the result."""
        config = self.pool.config(connector_id)
        if config is None:
            return None
        try:
            connector = self.pool(connector_id)
        except (LookupError, ValueError) as exc:
            return self._record(config.id, ConnectionStatus.FAILED, f"cannot be created: {exc}")
        try:
            host = await asyncio.wait_for(connector.describe(), timeout=self._timeout)
        except TimeoutError:
            status, message = ConnectionStatus.FAILED, f"no answer within {self._timeout:g} s"
        except VimAuthError as exc:
            status, message = ConnectionStatus.FAILED, f"credentials refused: {exc}"
        except VimError as exc:
            status, message = ConnectionStatus.FAILED, str(exc)
        else:
            status, message = ConnectionStatus.SUCCESSFUL, f"host {host.name} reachable"
        if config is not self.pool.config(connector_id):
            return None  # changed or deleted meanwhile: a newer check is pending
        return self._record(connector_id, status, message)

    def _record(self, connector_id: str, status: ConnectionStatus, message: str) -> ConnectorState:
        before = self._states.get(connector_id)
        state = ConnectorState(connector_id, status, message, self._clock())
        self._states[connector_id] = state
        metrics.connector_status(connector=connector_id, status=status)
        if before is None or before.status is not status:
            log.info("VIM connector %s: %s (%s)", connector_id, status, message)
            if status is ConnectionStatus.FAILED:
                # found down outside the loop (a recheck on demand): the loop, maybe asleep
                # for a whole interval, starts probing it every failed_interval now
                self._wake.set()
        if self._reported.get(connector_id) is not status:
            self._reported[connector_id] = status
            self._emit([_event(state)])
        back = before is not None and before.status is ConnectionStatus.FAILED
        if back and status is ConnectionStatus.SUCCESSFUL and self.on_up is not None:
            self.on_up(connector_id)
        return state

    async def run(self) -> None:
        """Check pending connectors at once, every connector each ``interval`` seconds, and a
        connector whose last check failed each ``failed_interval`` seconds: a host that comes
        back is seen (and its work reconciled, a stale copy removed) within seconds."""
        self._loop = loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            if self._pending:
                due = set(self._pending)
            elif loop.time() - last_full >= self._interval:
                due, last_full = set(self.pool.ids()), loop.time()
            else:
                due = self._failed()
            self._pending.clear()
            self._wake.clear()
            await asyncio.gather(*(self.check(cid) for cid in sorted(due)))
            if self._pending:
                continue
            timeout = max(self._interval - (loop.time() - last_full), 0.0)
            if self._failed():
                timeout = min(timeout, self._failed_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _failed(self) -> set[str]:
        return {c for c, s in self._states.items() if s.status is ConnectionStatus.FAILED}

    # ---------------------------------------------------------------- reading

    def states(self) -> tuple[ConnectorState, ...]:
        return tuple(self._states[cid] for cid in sorted(self._states))

    def opdata(self) -> etree._Element:
        """``<vim_connectors>`` for ``esc_datamodel/opdata``."""
        root = etree.Element(f"{{{ESC_NS}}}vim_connectors", nsmap={None: ESC_NS})  # type: ignore[dict-item]
        confirmations = self.confirmations() if self.confirmations is not None else {}
        for state in self.states():
            entry = etree.SubElement(root, f"{{{ESC_NS}}}vim_connector")
            etree.SubElement(entry, f"{{{ESC_NS}}}id").text = state.id
            etree.SubElement(entry, f"{{{ESC_NS}}}status").text = str(state.status)
            if state.message:
                etree.SubElement(entry, f"{{{ESC_NS}}}status_message").text = state.message
            if state.last_checked:
                etree.SubElement(entry, f"{{{ESC_NS}}}last_checked").text = format_event_time(
                    state.last_checked
                )
            confirmed = confirmations.get(state.id)
            if confirmed is not None:
                box = etree.SubElement(entry, f"{{{EO_NS}}}host_down_confirmation")
                etree.SubElement(box, f"{{{EO_NS}}}confirmed_by").text = confirmed.by
                etree.SubElement(box, f"{{{EO_NS}}}confirmed_at").text = format_event_time(
                    confirmed.at
                )
        return root

    def acceptance_errors(self, diff: ConfigDiff) -> list[RpcError]:
        """Refuse placing VMs on a connector whose last check failed (new groups, moves)."""
        errors: list[RpcError] = []
        for dep in diff.deployments():
            for group in dep.vm_groups:
                if group.after is None or group.change is ChangeKind.DELETED:
                    continue
                if group.change is ChangeKind.UPDATED and "locator" not in group.fields:
                    continue
                target = group.after.locator.vim_id or default_connector(dict(self._models))
                if target is None:
                    continue  # no default: the edit-time checks refuse it
                state = self._states.get(target)
                if state is None or state.status is not ConnectionStatus.FAILED:
                    continue
                errors.append(
                    RpcError(
                        tag=ErrorTag.OPERATION_FAILED,
                        app_tag="vim-unreachable",
                        message=(
                            f"VIM connector {target} is not usable: {state.message}"
                            " (fix the connector, or place the group elsewhere; a host that"
                            f" is back is checked at once by esc_nc_cli recheck-vim {target})"
                        ),
                        path=(
                            f"/{ESC_PREFIX}:esc_datamodel/{ESC_PREFIX}:tenants"
                            f"/{ESC_PREFIX}:tenant[{ESC_PREFIX}:name='{dep.tenant}']"
                            f"/{ESC_PREFIX}:deployments"
                            f"/{ESC_PREFIX}:deployment[{ESC_PREFIX}:name='{dep.name}']"
                            f"/{ESC_PREFIX}:vm_group[{ESC_PREFIX}:name='{group.name}']"
                            f"/{ESC_PREFIX}:locator"
                            + (f"/{ESC_PREFIX}:vim_id" if group.after.locator.vim_id else "")
                        ),
                    )
                )
        return errors


def _event(state: ConnectorState) -> EscEvent:
    if state.status is ConnectionStatus.SUCCESSFUL:
        return EscEvent.success(
            EventType.VIM_CONNECTION_STATE,
            f"Connection to VIM connector [{state.id}] is up",
            details=state.id,
        )
    return EscEvent.failure(
        EventType.VIM_CONNECTION_STATE,
        f"Connection to VIM connector [{state.id}] failed: {state.message}",
        details=state.id,
    )


def last_reported(events: Iterable[LoggedEvent]) -> dict[str, ConnectionStatus]:
    """Per connector, the status of its newest VIM_CONNECTION_STATE among ``events`` (any
    order): what clients were last told, so a restart reports only what changed since."""
    newest: dict[str, tuple[int, ConnectionStatus]] = {}
    for logged in events:
        if logged.event_type != EventType.VIM_CONNECTION_STATE:
            continue
        root = etree.fromstring(logged.payload)
        connector = root.findtext(f"{{{ESC_NS}}}event/{{{ESC_NS}}}details")
        status = root.findtext(f"{{{ESC_NS}}}status")
        if not connector or status is None:
            continue
        seen = newest.get(connector)
        if seen is None or seen[0] < logged.id:
            up = status == str(EventStatus.SUCCESS)
            state = ConnectionStatus.SUCCESSFUL if up else ConnectionStatus.FAILED
            newest[connector] = (logged.id, state)
    return {connector: state for connector, (_, state) in newest.items()}


def connectors_of(units: Iterable[bytes]) -> list[VimConnector]:
    """Models of running ``vim_connector`` units (``SqlDatastore.running_units(...).values()``)."""
    return [unit_model("vim_connector", xml) for xml in units]
