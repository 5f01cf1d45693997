"""running in memory (store/image.py): reads never wait for an edit, and memory = database.

The image is changed only after a transaction that wrote running commits, so a read during
an edit sees the old version, a refused edit changes nothing, and a reopened datastore (the
image rebuilt from the database) reads and validates exactly as the live one did.
"""

from __future__ import annotations

import threading

import pytest
from lxml import etree

from esc_orch.model.diff import ConfigDiff
from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from payloads import ESC_NS, EXAMPLES, config_of, esc

NS = {"e": ESC_NS}
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


@pytest.fixture
def seeded(store: SqlDatastore) -> SqlDatastore:
    for name in ("vim_connectors.xml", "deploy_csp_1.xml"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    return store


def _tenants(store: SqlDatastore) -> list[str]:
    names = store.get_config(source=Datastore.RUNNING).xpath(
        "//e:tenant/e:name/text()", namespaces=NS
    )
    assert isinstance(names, list)
    return [str(n) for n in names]


def _add_tenant(store: SqlDatastore, name: str) -> None:
    body = f"<tenants><tenant><name>{name}</name></tenant></tenants>"
    store.edit_config(target=Datastore.RUNNING, config=config_of(esc(body)))


def test_a_read_during_an_edit_sees_the_old_version_without_waiting(
    seeded: SqlDatastore,
) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(diff: ConfigDiff) -> list[RpcError]:
        inside.set()
        assert release.wait(timeout=10)
        return []

    seeded.add_acceptance_check(hold)
    editor = threading.Thread(target=_add_tenant, args=(seeded, "late"))
    editor.start()
    try:
        assert inside.wait(timeout=10)
        # The edit holds the datastore's write lock now; reads go on, on their own snapshot.
        assert "late" not in _tenants(seeded)
        assert b"late" not in seeded.running_xml()
    finally:
        release.set()
        editor.join(timeout=10)
    assert "late" in _tenants(seeded)
    assert b"<name>late</name>" in seeded.running_xml()  # the cache follows the commit


def test_a_refused_edit_leaves_memory_as_it_was(seeded: SqlDatastore) -> None:
    before = seeded.running_xml()
    bad = esc(
        "<tenants><tenant><name>name1</name><deployments><deployment><name>dep</name>"
        "<vm_group><name>Group1</name><flavor>NO_SUCH_FLAVOR</flavor></vm_group>"
        "</deployment></deployments></tenant></tenants>"
    )
    with pytest.raises(RpcErrors):
        seeded.edit_config(target=Datastore.RUNNING, config=config_of(bad))
    assert seeded.running_xml() == before


def test_reopened_image_reads_and_validates_as_the_live_one(
    seeded: SqlDatastore, store_url: str
) -> None:
    _add_tenant(seeded, "t2")
    delete_flavor = esc(
        f'<flavors><flavor xmlns:nc="{NC}" nc:operation="delete">'
        "<name>FLAVOR_2_4096_10000</name></flavor></flavors>"
    )
    with pytest.raises(RpcErrors):  # referenced by the deployment: refused, from memory
        seeded.edit_config(target=Datastore.RUNNING, config=config_of(delete_flavor))
    before = seeded.running_xml()
    seeded.close()
    reopened = SqlDatastore.open(url=store_url)
    try:
        assert reopened.running_xml() == before
        with pytest.raises(RpcErrors):  # the leafref index was rebuilt from the database
            reopened.edit_config(target=Datastore.RUNNING, config=config_of(delete_flavor))
        assert etree.tostring(reopened.get_config(source=Datastore.RUNNING)) == etree.tostring(
            SqlDatastore.open(url=store_url).get_config(source=Datastore.RUNNING)
        )
    finally:
        reopened.close()


def test_many_entries_in_one_edit_are_found_and_deleted_by_key(
    store: SqlDatastore,
) -> None:
    names = [f"t{i:04d}" for i in (7, 3, 9, 1, *range(10, 400))]
    body = "".join(f"<tenant><name>{n}</name></tenant>" for n in names)
    store.edit_config(target=Datastore.RUNNING, config=config_of(esc(f"<tenants>{body}</tenants>")))
    assert _tenants(store) == sorted(names)  # units come back in key order
    again = "".join(f"<tenant><name>{n}</name></tenant>" for n in names[:50])
    diff = store.edit_config(
        target=Datastore.RUNNING, config=config_of(esc(f"<tenants>{again}</tenants>"))
    )
    assert diff is not None and diff.empty  # merging existing entries finds each one
    gone = "".join(
        f'<tenant xmlns:nc="{NC}" nc:operation="delete"><name>{n}</name></tenant>'
        for n in names[::2]
    )
    store.edit_config(target=Datastore.RUNNING, config=config_of(esc(f"<tenants>{gone}</tenants>")))
    assert _tenants(store) == sorted(names[1::2])
