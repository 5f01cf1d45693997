"""Deferred publication (``store/datastore_publish.py``): listeners learn of commits later,
in commit order, and at once when flushed; the NETCONF core flushes before a ``get``.

The holding rule is a pure function tested on numbers; the publisher's thread is tested with
a holding so long (a minute) that nothing can be delivered unless flushed, so no test sleeps.
"""

from __future__ import annotations

import pytest

from esc_orch.model.diff import ConfigDiff
from esc_orch.model.units import UnitId
from esc_orch.northbound.app import build_core
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.datastore_publish import Holding, Publisher
from nbsupport.inproc import InprocClient, is_ok
from payloads import EXAMPLES, config_of, esc

LONG = Holding(quiet=60.0, max_delay=60.0)
FLAVOR = (
    "<flavors><flavor><name>F9</name><vcpus>1</vcpus><memory_mb>512</memory_mb>"
    "<root_disk_mb>1024</root_disk_mb></flavor></flavors>"
)


@pytest.mark.parametrize(
    ("now", "first", "last", "wait"),
    [
        (10.0, 10.0, 10.0, 0.025),  # just posted: a quiet window
        (10.02, 10.0, 10.0, 0.005),
        (10.03, 10.0, 10.0, 0.0),  # quiet long enough
        (10.49, 10.0, 10.48, 0.01),  # edits keep coming: the oldest's bound comes first
        (10.6, 10.0, 10.59, 0.0),  # never later than max_delay after the oldest
    ],
)
def test_holding_waits_for_quiet_but_never_past_the_oldest_bound(
    now: float, first: float, last: float, wait: float
) -> None:
    got = Holding(quiet=0.025, max_delay=0.5).wait(now=now, first=first, last=last)
    assert got == pytest.approx(wait, abs=1e-9)


def test_the_publisher_delivers_in_order_only_when_flushed_or_closed() -> None:
    seen: list[int] = []
    publisher = Publisher(seen.append, holding=LONG)
    for item in range(3):
        publisher.post(item)
    assert seen == [] and publisher.pending()
    publisher.flush()
    assert seen == [0, 1, 2] and not publisher.pending()
    publisher.post(3)
    publisher.close()  # what waits is delivered before the thread stops
    assert seen == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        publisher.post(4)


def test_a_failing_listener_does_not_stop_the_ones_after_it() -> None:
    seen: list[int] = []

    def deliver(item: int) -> None:
        if item == 1:
            raise ValueError("listener bug")
        seen.append(item)

    publisher = Publisher(deliver, holding=LONG)
    for item in range(3):
        publisher.post(item)
    publisher.flush()
    assert seen == [0, 2]
    publisher.close()


@pytest.fixture
def deferred(store: SqlDatastore) -> SqlDatastore:
    for name in ("vim_connectors.xml", "deploy_csp_1.xml"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    store.defer_publication(LONG)
    return store


def test_a_group_s_diffs_then_its_touched_units_reach_the_listeners_after_the_return(
    deferred: SqlDatastore,
) -> None:
    seen: list[ConfigDiff | frozenset[UnitId]] = []
    deferred.add_listener(seen.append)
    deferred.add_touch_listener(seen.append)
    results = deferred.run_group(
        [
            lambda: deferred.edit_config(target=Datastore.RUNNING, config=config_of(esc(FLAVOR))),
            lambda: deferred.edit_config(
                target=Datastore.RUNNING,
                config=config_of(esc(FLAVOR.replace("<vcpus>1", "<vcpus>2"))),
            ),
        ]
    )
    assert all(ok for ok, _ in results)
    assert seen == [] and deferred.publications_pending()  # committed, not yet told
    deferred.flush_publications()
    diffs = [s for s in seen if isinstance(s, ConfigDiff)]
    assert [d.txid for d in diffs] == sorted(d.txid for d in diffs) and len(diffs) == 2
    assert all(isinstance(s, ConfigDiff) for s in seen[:2])  # as run_group always did
    assert all(isinstance(s, frozenset) for s in seen[2:]) and len(seen) == 4
    assert not deferred.publications_pending()


async def test_the_core_flushes_before_a_get_but_not_before_an_edit_is_answered(
    deferred: SqlDatastore,
) -> None:
    seen: list[ConfigDiff] = []
    deferred.add_listener(seen.append)
    client = InprocClient(build_core(backend=deferred, esc_revision="2024-01-01"))
    edit = (
        '<edit-config><target><running/></target><config xmlns="urn:ietf:params:xml:ns:netconf:'
        f'base:1.0">{esc(FLAVOR)}</config></edit-config>'
    )
    assert is_ok(await client.rpc(edit))
    assert seen == []  # answered without waiting for the listeners
    await client.rpc("<get/>")
    assert len(seen) == 1  # a get sees the listeners after every acknowledged edit
