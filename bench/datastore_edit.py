"""Bench: validate + commit a one-deployment edit with 10, 1,000 and 10,000 vm_groups stored.

The goal is flat cost: an edit loads and validates only the units it touches and what they
reference. Prints the median and p90 of 50 edits, after 5 warm-up edits (each moves one
deployment's locator
between CSP-1 and CSP-2, on running, so each is a full validate + commit + diff) per size,
and the ratio of the largest to the smallest median.

Run: .venv/bin/python bench/datastore_edit.py [--sizes 10,1000,10000] [--edits 50] [--url URL]
(``--url`` measures another database, e.g. the PostgreSQL of scripts/postgres.sh; its tables
are dropped first.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lxml import etree

from esc_orch.model.schema import ESC_NS, NC_NS
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.tables import Base, make_engine

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GROUPS_PER_DEPLOYMENT = 1
BATCH = 500


def _config(xml: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC_NS}">{xml}</config>'.encode())


def _deployment(name: str, vim: str) -> str:
    groups = "".join(
        f"<vm_group><name>g{i}</name><locator><vim_id>{vim}</vim_id>"
        f"<vim_project>{vim}</vim_project></locator><image>csr.qcow2</image>"
        f"<flavor>F</flavor><bootup_time>600</bootup_time>"
        f"<interfaces><interface><nicid>0</nicid><network>Eth0-2</network></interface>"
        f"</interfaces></vm_group>"
        for i in range(GROUPS_PER_DEPLOYMENT)
    )
    return f"<deployment><name>{name}</name>{groups}</deployment>"


def _populate(store: SqlDatastore, groups: int) -> None:
    connectors = (EXAMPLES / "vim_connectors.xml").read_text().split("-->", 1)[1]
    flavor = (
        f'<esc_datamodel xmlns="{ESC_NS}"><flavors><flavor><name>F</name><vcpus>1</vcpus>'
        "<memory_mb>512</memory_mb><root_disk_mb>1024</root_disk_mb></flavor></flavors>"
        "</esc_datamodel>"
    )
    store.edit_config(target=Datastore.RUNNING, config=_config(connectors + flavor))
    deployments = groups // GROUPS_PER_DEPLOYMENT
    for start in range(0, deployments, BATCH):
        deps = "".join(
            _deployment(f"d{i}", "CSP-1") for i in range(start, min(start + BATCH, deployments))
        )
        xml = (
            f'<esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>t{start // BATCH}</name>'
            f"<deployments>{deps}</deployments></tenant></tenants></esc_datamodel>"
        )
        store.edit_config(target=Datastore.RUNNING, config=_config(xml))


def measure(groups: int, edits: int, url: str | None = None) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="esc-bench-") as tmp:
        if url:
            engine = make_engine(url)
            Base.metadata.drop_all(engine)
            engine.dispose()
        store = SqlDatastore.open(data_dir=Path(tmp), url=url)
        started = time.perf_counter()
        _populate(store, groups)
        print(f"  populated {groups} vm_groups in {time.perf_counter() - started:.1f} s")
        timings = []
        for i in range(edits + 5):  # the first 5 warm caches up and are not counted
            vim = "CSP-2" if i % 2 == 0 else "CSP-1"
            xml = (
                f'<esc_datamodel xmlns="{ESC_NS}"><tenants><tenant><name>t0</name><deployments>'
                f"{_deployment('d0', vim)}</deployments></tenant></tenants></esc_datamodel>"
            )
            config = _config(xml)
            t0 = time.perf_counter()
            diff = store.edit_config(target=Datastore.RUNNING, config=config)
            if i >= 5:
                timings.append((time.perf_counter() - t0) * 1000)
            assert diff is not None and len(diff.changes) == 1
        store.close()
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--url", help="a SQLAlchemy database URL instead of a temporary SQLite")
    args = parser.parse_args()
    medians = {}
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size} vm_groups stored:")
        timings = sorted(measure(size, args.edits, args.url))
        median = statistics.median(timings)
        p90 = timings[int(len(timings) * 0.9) - 1]
        medians[size] = median
        print(f"  one-deployment edit (validate + commit): median {median:.2f} ms, p90 {p90:.2f}")
    smallest, largest = min(medians), max(medians)
    print(
        f"ratio median({largest})/median({smallest}) = {medians[largest] / medians[smallest]:.2f}"
    )


if __name__ == "__main__":
    main()
