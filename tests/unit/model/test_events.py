"""escEvent as data: the enum agrees with YANG, rendering is byte-faithful to the seed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from esc_orch.model.config_events import config_events
from esc_orch.model.diff import ChangeKind, ConfigDiff, UnitChange
from esc_orch.model.events import (
    EscEvent,
    EventStatus,
    EventType,
    LoggedEvent,
    VmUpdateType,
    esc_event_xml,
    format_event_time,
    from_millis,
    notification_complete_xml,
    parse_esc_event,
    parse_event_time,
    replay_complete_xml,
    to_millis,
)
from esc_orch.model.schema import ESC_NS, NOTIF_NS, yang_dir
from esc_orch.model.units import UnitId
from esc_orch.model.validate import validate_notification
from payloads import FIXTURES

SEED = sorted((FIXTURES / "notifications").glob("*.xml"))


def _enum(typedef: str) -> list[str]:
    text = (yang_dir() / "esc-types.yang").read_text()
    body = text[text.index(f"typedef {typedef} {{") :]
    body = re.split(r"\n  (?:typedef|grouping) ", body)[0]
    return re.findall(r"enum ([A-Z_]+)", body)


def test_event_type_enum_is_the_yang_enum() -> None:
    assert [e.value for e in EventType] == _enum("event-type")
    assert [e.value for e in VmUpdateType] == _enum("vm-update-type")


def _canonical(element: etree._Element) -> bytes:
    copy = etree.fromstring(etree.tostring(element))
    for node in copy.iter():
        if isinstance(node.tag, str):
            node.tail = None
            if node.text is not None and not node.text.strip() and len(node):
                node.text = None
    return etree.tostring(copy, method="c14n")


@pytest.mark.parametrize("fixture", SEED, ids=lambda p: Path(p).stem)
def test_seed_notifications_round_trip_byte_for_byte(fixture: Path) -> None:
    root = etree.parse(str(fixture)).getroot()
    content = root.find(f"{{{ESC_NS}}}escEvent")
    assert content is not None
    event = parse_esc_event(content)
    rendered = etree.fromstring(esc_event_xml(event))
    assert _canonical(rendered) == _canonical(content)
    logged = LoggedEvent(
        id=1,
        event_time=parse_event_time(root.findtext(f"{{{NOTIF_NS}}}eventTime") or ""),
        event_type=str(event.event.type),
        payload=esc_event_xml(event),
    )
    whole = etree.fromstring(logged.notification_xml())
    assert _canonical(whole) == _canonical(root)
    assert validate_notification(whole) == []


def test_rendered_fields_follow_the_yang_order_whatever_the_keyword_order() -> None:
    event = EscEvent.failure(
        EventType.VM_RECOVERY_COMPLETE,
        "Recovery: Recovery completed with errors for VM: [x]",
        vm_group="g",
        tenant="demo",
        depname="dep",
        details="more",
    )
    text = esc_event_xml(event).decode()
    names = re.findall(r"<([a-z_]+)>", text)
    assert names == (
        [
            "status",
            "status_code",
            "status_message",
            "depname",
            "tenant",
            "vm_group",
            "event",
            "type",
            "details",
        ]
    )
    assert text.startswith(f'<escEvent xmlns="{ESC_NS}"><status>FAILURE</status>')
    assert event.status is EventStatus.FAILURE and event.status_code == 500


def test_event_time_is_milliseconds_with_a_utc_offset() -> None:
    moment = datetime(2020, 9, 3, 14, 41, 16, 299_999, tzinfo=UTC) + timedelta(hours=0)
    assert format_event_time(moment) == "2020-09-03T14:41:16.299+00:00"
    assert parse_event_time("2020-09-03T07:41:16.299-07:00") == datetime(
        2020, 9, 3, 14, 41, 16, 299_000, tzinfo=UTC
    )
    assert parse_event_time("2020-09-03T14:41:16z").tzinfo is UTC
    with pytest.raises(ValueError):
        parse_event_time("2020-09-03T14:41:16")
    assert from_millis(to_millis(moment)) == moment.replace(microsecond=299_000)


def test_replay_and_notification_complete_are_rfc5277_shapes() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    for xml, name in (
        (replay_complete_xml(moment), "replayComplete"),
        (notification_complete_xml(moment), "notificationComplete"),
    ):
        root = etree.fromstring(xml)
        assert root.tag == f"{{{NOTIF_NS}}}notification"
        assert root[1].tag == f"{{urn:ietf:params:xml:ns:netmod:notification}}{name}"


def _change(kind: str, key: str, change: ChangeKind) -> UnitChange:
    before = None if change is ChangeKind.CREATED else b"<x/>"
    after = None if change is ChangeKind.DELETED else b"<y/>"
    return UnitChange(UnitId(kind, tuple(key.split("/"))), change, before, after)


def test_config_events_from_a_diff() -> None:
    diff = ConfigDiff(
        txid=7,
        changes=(
            _change("deployment", "demo/dep", ChangeKind.CREATED),
            _change("flavor", "small", ChangeKind.DELETED),
            _change("tenant", "demo", ChangeKind.CREATED),
            _change("tenant", "old", ChangeKind.UPDATED),
            _change("vim_connector", "CSP-1", ChangeKind.UPDATED),
            _change("vim_connector", "CSP-2", ChangeKind.CREATED),
            _change("network", "net", ChangeKind.DELETED),
        ),
    )
    events = config_events(diff)
    assert [(e.event.type, e.event.details) for e in events] == [
        (EventType.CREATE_VIM_CONNECTOR, "CSP-2"),
        (EventType.CREATE_TENANT, "demo"),
        (EventType.UPDATE_VIM_CONNECTOR, "CSP-1"),
        (EventType.DELETE_NETWORK, "net"),
        (EventType.DELETE_FLAVOR, "small"),
    ]
    tenant = events[1]
    assert (tenant.tenant, tenant.tenant_id, tenant.status_code) == ("demo", "demo", 200)
    assert tenant.status_message == "Tenant [demo] created successfully"
    for event in events:
        logged = LoggedEvent(1, datetime.now(UTC), str(event.event.type), esc_event_xml(event))
        assert validate_notification(etree.fromstring(logged.notification_xml())) == []
