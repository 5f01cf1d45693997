"""The readable form of notifications printed by ``esc_nc_cli notif``."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from esc_orch.cli.notif import format_notification
from esc_orch.model.events import replay_complete_xml
from payloads import FIXTURES


def test_a_seed_notification_reads_as_one_block() -> None:
    root = etree.parse(str(FIXTURES / "notifications" / "s1_vm_updated.xml")).getroot()
    lines = format_notification(root).splitlines()
    assert lines[0] == "2020-09-03T05:41:16.299+00:00  VM_UPDATED  SUCCESS 200"
    assert lines[1] == "  VIM Locator Updated Successfully"
    assert lines[2].startswith("  vm_update_type: LOCATOR_UPDATED  depname: dep  tenant: demo")
    assert lines[3].startswith("  vm_source: vmid=6b0e7179") and "vim_id=CSP-2" in lines[3]
    assert lines[4].startswith("    interface nicid=0 type=access")
    assert "ip_address=192.168.23.62" in lines[4]
    assert lines[
        5
    ] == "    interface nicid=1 type=trunk port_id=0adc3096-509c-49b7-9bd7-a25bbf2a9345" + (
        " admin_state_up=true network=Eth0-2 subnet="
    )


def test_replay_complete_reads_as_a_marker() -> None:
    root = etree.fromstring(replay_complete_xml(datetime(2024, 1, 1, tzinfo=UTC)))
    assert format_notification(root) == (
        "2024-01-01T00:00:00.000+00:00  -- replay complete: live notifications follow --"
    )


def test_our_stale_copy_notification_reads_as_its_sentence_then_its_facts() -> None:
    from esc_orch.model.eo_events import entry_xml, stale_copy_removed  # noqa: PLC0415
    from esc_orch.model.events import LoggedEvent  # noqa: PLC0415

    notice = stale_copy_removed(
        depname="dep", tenant="demo", depid="d-1", vm_group="g", vmid="v-1", vmname="vm-1",
        vim_id="CSP-1", hostname="csp-1", power_found="stopped", placed_on="CSP-2",
        disk_kept=True,
    )  # fmt: skip
    logged = LoggedEvent(1, datetime(2024, 1, 1, tzinfo=UTC), "eo:x", entry_xml(notice))
    lines = format_notification(etree.fromstring(logged.notification_xml())).splitlines()
    assert lines[0] == "2024-01-01T00:00:00.000+00:00  eo:stale-copy-removed"
    assert lines[1] == f"  {notice.message}"
    assert "vim_id: CSP-1" in lines[2] and "action: removed-disk-kept" in lines[2]
