"""RFC 6241 edit semantics on the real SQLite datastore: operations, candidate, diffs, secrets."""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.model.diff import ChangeKind
from esc_orch.model.errors import RpcErrors
from esc_orch.northbound import backend
from esc_orch.northbound.backend import Datastore, DefaultOperation
from esc_orch.store.datastore import SqlDatastore
from payloads import ESC_NS, EXAMPLES, config_of, dump, esc

NS = {"e": ESC_NS}


def _running(store: SqlDatastore, xpath: str) -> list[str]:
    found = store.get_config(source=Datastore.RUNNING).xpath(xpath, namespaces=NS)
    assert isinstance(found, list)
    return [str(v) for v in found]


@pytest.fixture
def seeded(store: SqlDatastore) -> SqlDatastore:
    for name in ("vim_connectors.xml", "deploy_csp_1.xml"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    return store


def test_locator_move_gives_a_typed_diff(seeded: SqlDatastore) -> None:
    diff = seeded.edit_config(
        target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_2.xml")
    )
    assert diff is not None
    (dep,) = diff.deployments()
    assert (dep.tenant, dep.name, dep.change) == ("name1", "dep", ChangeKind.UPDATED)
    (group,) = dep.vm_groups
    assert group.fields == {"locator"}
    assert group.before is not None and group.after is not None
    assert (group.before.locator.vim_id, group.after.locator.vim_id) == ("CSP-1", "CSP-2")


def test_merge_of_identical_content_changes_nothing(seeded: SqlDatastore) -> None:
    diff = seeded.edit_config(
        target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml")
    )
    assert diff is not None and diff.empty


def test_replace_drops_what_the_new_content_lacks(seeded: SqlDatastore) -> None:
    seeded.edit_config(
        target=Datastore.RUNNING,
        config=config_of(
            esc(
                '<tenants><tenant nc:operation="replace"><name>name1</name>'
                "<description>kept</description></tenant></tenants>"
            )
        ),
    )
    assert _running(seeded, "//e:tenant/e:description/text()") == ["kept"]
    assert _running(seeded, "//e:deployment/e:name/text()") == []  # replaced away


def test_remove_of_a_missing_entry_is_fine_and_delete_is_not(seeded: SqlDatastore) -> None:
    remove = esc('<tenants><tenant nc:operation="remove"><name>nobody</name></tenant></tenants>')
    diff = seeded.edit_config(target=Datastore.RUNNING, config=config_of(remove))
    assert diff is not None and diff.empty
    with pytest.raises(RpcErrors):
        seeded.edit_config(
            target=Datastore.RUNNING, config=config_of(remove.replace("remove", "delete"))
        )


def test_default_operation_none_needs_existing_entries(seeded: SqlDatastore) -> None:
    body = esc(
        '<tenants><tenant><name>absent</name><description nc:operation="merge">x'
        "</description></tenant></tenants>"
    )
    with pytest.raises(RpcErrors) as info:
        seeded.edit_config(
            target=Datastore.RUNNING,
            config=config_of(body),
            default_operation=DefaultOperation.NONE,
        )
    assert info.value.errors[0].tag == "data-missing"


def test_deleting_a_tenant_deletes_its_deployments(seeded: SqlDatastore) -> None:
    diff = seeded.edit_config(
        target=Datastore.RUNNING,
        config=config_of(
            esc('<tenants><tenant nc:operation="delete"><name>name1</name></tenant></tenants>')
        ),
    )
    assert diff is not None
    assert {(str(c.unit), c.change) for c in diff.changes} == {
        ("tenant[name1]", ChangeKind.DELETED),
        ("deployment[name1/dep]", ChangeKind.DELETED),
    }


def test_choice_case_replaces_the_other_case(seeded: SqlDatastore) -> None:
    body = (
        (EXAMPLES / "deploy_csp_1.xml")
        .read_text()
        .replace("<file>file:///var/tmp/csr_config.sh</file>", "<data>hostname csr</data>")
    )
    seeded.edit_config(target=Datastore.RUNNING, config=config_of(body))
    assert _running(seeded, "//e:configuration/e:data/text()") == ["hostname csr"]
    assert _running(seeded, "//e:configuration/e:file") == []


def test_candidate_commit_and_discard(seeded: SqlDatastore) -> None:
    seeded.edit_config(
        target=Datastore.CANDIDATE, config=config_of(EXAMPLES / "vim_connector_cluster.xml")
    )
    assert seeded.candidate_is_dirty()
    assert "CSP-1-cluster" not in _running(seeded, "//e:vim_connector/e:id/text()")
    seeded.discard_changes()
    assert not seeded.candidate_is_dirty()
    seeded.edit_config(
        target=Datastore.CANDIDATE, config=config_of(EXAMPLES / "vim_connector_cluster.xml")
    )
    seeded.edit_config(
        target=Datastore.CANDIDATE, config=config_of(EXAMPLES / "deploy_gluster.xml")
    )
    diff = seeded.commit()
    assert {str(c.unit) for c in diff.changes} == {
        "vim_connector[CSP-1-cluster]",
        "deployment[name1/dep]",
    }
    assert _running(seeded, "//e:locator/e:vim_id/text()") == ["CSP-1-cluster"]
    assert not seeded.candidate_is_dirty()


def test_invalid_candidate_cannot_be_committed(seeded: SqlDatastore) -> None:
    dangling = (EXAMPLES / "deploy_csp_1.xml").read_text().replace("CSP-1", "CSP-7")
    seeded.edit_config(
        target=Datastore.CANDIDATE,
        config=config_of(dangling),
        test_option=backend.TestOption.SET,  # on the candidate, validation waits for commit
    )
    before = dump(seeded)
    with pytest.raises(RpcErrors) as info:
        seeded.commit()
    assert info.value.errors[0].tag == "data-missing"
    assert dump(seeded) == before


def test_secrets_are_masked_and_the_mask_keeps_them(seeded: SqlDatastore) -> None:
    shown = etree.tostring(seeded.get_config(source=Datastore.RUNNING))
    assert b"change-me" not in shown and b"********" in shown
    # a get-config -> edit-config round trip with replace keeps the stored password
    connectors = seeded.get_config(source=Datastore.RUNNING).find(f"{{{ESC_NS}}}esc_system_config")
    assert connectors is not None
    seeded.edit_config(
        target=Datastore.RUNNING,
        config=config_of(etree.tostring(connectors)),
        default_operation=DefaultOperation.REPLACE,
    )
    stored = b"".join(seeded.running_units("vim_connector").values())
    assert stored.count(b"<value>change-me</value>") == 3


def test_configuration_survives_reopening(seeded: SqlDatastore, store_url: str) -> None:
    before = etree.tostring(seeded.get_config(source=Datastore.RUNNING))
    seeded.close()
    reopened = SqlDatastore.open(url=store_url)
    try:
        assert etree.tostring(reopened.get_config(source=Datastore.RUNNING)) == before
    finally:
        reopened.close()
