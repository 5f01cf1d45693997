"""Group commit (``SqlDatastore.run_group``): several edits, one transaction, RFC 6241 each.

Each edit of a group sees the ones before it, a refused one is refused alone, the diffs
reach the listeners in order after the commit, the events are logged in order, and a failure
that is not an rpc-error rolls the whole group back (none of its edits was acknowledged).
"""

from __future__ import annotations

import pytest

from esc_orch.model.backend import GroupCommitBackend, RunningSnapshotBackend
from esc_orch.model.diff import ConfigDiff
from esc_orch.model.errors import RpcErrors
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from payloads import EXAMPLES, config_of, esc

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
FLAVOR = (
    "<flavors><flavor><name>F9</name><vcpus>1</vcpus><memory_mb>512</memory_mb>"
    "<root_disk_mb>1024</root_disk_mb></flavor></flavors>"
)


def _edit(store: SqlDatastore, body: str, **kw: object) -> object:
    return lambda: store.edit_config(target=Datastore.RUNNING, config=config_of(esc(body)), **kw)


def _uses_f9(tenant: str) -> str:
    example = (EXAMPLES / "deploy_csp_1.xml").read_text()
    dep = example.split("<deployments>", 1)[1].split("</deployments>", 1)[0]
    dep = dep.replace("FLAVOR_2_4096_10000", "F9")
    return (
        f"<tenants><tenant><name>{tenant}</name><deployments>{dep}</deployments></tenant></tenants>"
    )


@pytest.fixture
def seeded(store: SqlDatastore) -> SqlDatastore:
    for name in ("vim_connectors.xml", "deploy_csp_1.xml"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    return store


def test_each_edit_sees_the_ones_before_it_and_a_refusal_stays_alone(
    seeded: SqlDatastore, store_url: str
) -> None:
    diffs: list[ConfigDiff] = []
    seeded.add_listener(diffs.append)
    create_again = FLAVOR.replace("<flavor>", f'<flavor xmlns:nc="{NC}" nc:operation="create">')
    results = seeded.run_group(
        [
            _edit(seeded, FLAVOR),  # F9 exists only inside the group's transaction...
            _edit(seeded, _uses_f9("g1")),  # ...and this leafref to it validates
            _edit(seeded, create_again),  # data-exists: refused, alone
            _edit(seeded, "<tenants><tenant><name>g2</name></tenant></tenants>"),
        ]
    )
    assert [ok for ok, _ in results] == [True, True, False, True]
    refusal = results[2][1]
    assert isinstance(refusal, RpcErrors)
    assert refusal.errors[0].tag == "data-exists"
    assert [d.txid for d in diffs] == sorted(d.txid for d in diffs) and len(diffs) == 3
    logged = [e.event_type for e in seeded.events.read()]
    assert logged[-2:] == ["CREATE_TENANT", "CREATE_TENANT"]  # g1 then g2, in order
    seeded.close()
    reopened = SqlDatastore.open(url=store_url)  # durable: all three, once
    try:
        text = reopened.running_xml()
        assert b"<name>F9</name>" in text and b"<name>g1</name>" in text
        assert b"<name>g2</name>" in text
    finally:
        reopened.close()


def test_a_failure_that_is_not_an_rpc_error_rolls_the_group_back(seeded: SqlDatastore) -> None:
    before = seeded.running_xml()
    events_before = len(seeded.events.read())

    def broken() -> object:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        seeded.run_group([_edit(seeded, FLAVOR), broken])
    assert seeded.running_xml() == before
    assert len(seeded.events.read()) == events_before
    # and the datastore goes on working
    assert seeded.run_group([_edit(seeded, FLAVOR)])[0][0]
    assert b"<name>F9</name>" in seeded.running_xml()


def test_the_sql_datastore_has_both_fast_paths(seeded: SqlDatastore) -> None:
    assert isinstance(seeded, GroupCommitBackend)
    assert isinstance(seeded, RunningSnapshotBackend)
