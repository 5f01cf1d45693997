"""Our own notifications (``eo:stale-copy-removed``): valid against yang/esc-orch.yang, one
sentence (its log round trip: tests/unit/store/test_event_log.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from esc_orch.model.eo_events import (
    StaleCopyAction,
    StaleCopyRemoved,
    entry_type,
    entry_xml,
    parse_stale_copy_removed,
    stale_copy_removed,
)
from esc_orch.model.events import LoggedEvent
from esc_orch.model.schema import EO_NS
from esc_orch.model.validate import validate_notification


def _notice(*, disk_kept: bool = True, power: str | None = "running") -> StaleCopyRemoved:
    return stale_copy_removed(
        depname="dep", tenant="name1", depid="d-1", vm_group="Group1", vmid="v-1",
        vmname="dep_Group1_0_v-1", vim_id="CSP-1", hostname="csp-1", power_found=power,
        placed_on="CSP-2", disk_kept=disk_kept,
    )  # fmt: skip


def test_the_notification_validates_in_its_envelope_with_the_fields_in_yang_order() -> None:
    notice = _notice()
    logged = LoggedEvent(1, datetime.now(UTC), entry_type(notice), entry_xml(notice))
    root = etree.fromstring(logged.notification_xml())
    assert validate_notification(root) == []
    content = root[1]
    assert content.tag == f"{{{EO_NS}}}stale-copy-removed"
    assert [etree.QName(c).localname for c in content] == [
        "depname", "tenant", "depid", "vm_group", "vmid", "vmname", "vim_id", "hostname",
        "power_found", "placed_on", "action", "message",
    ]  # fmt: skip
    assert parse_stale_copy_removed(content) == notice
    assert entry_type(notice) == "eo:stale-copy-removed"


def test_one_sentence_says_what_was_found_and_done() -> None:
    assert _notice().message == (
        "Stale copy of VM [dep_Group1_0_v-1] found on VIM connector [CSP-1] (it was running) "
        "was removed, keeping its shared disk (the VM's own); dep_Group1_0_v-1 is placed on CSP-2"
    )
    local = _notice(disk_kept=False, power="stopped")
    assert local.action is StaleCopyAction.REMOVED
    assert "with its disk on that host" in local.message and "running" not in local.message


def test_an_unknown_power_is_refused_by_the_yang() -> None:
    payload = entry_xml(_notice()).replace(b">running<", b">dancing<")
    logged = LoggedEvent(1, datetime.now(UTC), "eo:stale-copy-removed", payload)
    assert validate_notification(etree.fromstring(logged.notification_xml())) != []
