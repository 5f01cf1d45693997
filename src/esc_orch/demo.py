"""The README's demo: the seed's scenarios for real, on an emulated three-host CSP cluster.

Default (``python -m esc_orch.demo``): three ``esc-csp-sim host`` processes sharing a Gluster
directory (cluster ``Cluster_Test``), the real ``esc-orchd serve`` on an embedded SQLite, and an
ncclient session that registers the VIM connectors, subscribes to ``escEvent`` and prints
every event as it arrives while it deploys the seed payload, moves it to CSP-2 (scenario 1),
undeploys it, then runs scenario 3 (a local disk moved to Gluster through a connector with
``cluster_name``). Everything runs on 127.0.0.1 in a temporary directory and is stopped at
the end, also on failure or Ctrl-C.

``--datamodel``: the earlier, configuration-only demo (the typed diffs of the same payloads
committed to the datastore, and a refused payload), without processes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lxml import etree

from esc_orch.model.diff import ConfigDiff
from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.model.schema import NC_NS
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _config(path: Path) -> etree._Element:
    config = etree.Element(f"{{{NC_NS}}}config")
    config.append(parse_xml(path.read_bytes()))
    return config


def _show(diff: ConfigDiff) -> None:
    for change in diff.changes:
        print(f"    commit {diff.txid}: {change.unit} {change.change}")
    for dep in diff.deployments():
        for group in dep.vm_groups:
            detail = ""
            if "locator" in group.fields and group.before and group.after:
                detail = f" locator {group.before.locator.vim_id} -> {group.after.locator.vim_id}"
            if "extensions" in group.fields and group.before and group.after:
                detail += (
                    f", storage {group.before.disk_storage_name} -> {group.after.disk_storage_name}"
                )
            fields = ", ".join(sorted(group.fields)) or "-"
            print(f"      vm_group {group.name}: {group.change} ({fields}){detail}")


def _step(store: SqlDatastore, title: str, *files: str) -> None:
    print(f"\n== {title}")
    for name in files:
        started = time.perf_counter()
        diff = store.edit_config(target=Datastore.RUNNING, config=_config(EXAMPLES / name))
        elapsed = (time.perf_counter() - started) * 1000
        print(f"  edit-config {name}: ok ({elapsed:.1f} ms)")
        if diff is not None:
            _show(diff)


def run(data_dir: Path) -> int:
    store = SqlDatastore.open(data_dir=data_dir)
    print(f"esc-orch demo: datastore {data_dir / 'esc-orch.sqlite'}")
    print("\n== A deployment naming a VIM connector that does not exist is refused")
    try:
        store.edit_config(target=Datastore.RUNNING, config=_config(EXAMPLES / "deploy_csp_1.xml"))
    except (RpcError, RpcErrors) as exc:
        errors = exc.errors if isinstance(exc, RpcErrors) else (exc,)
        for error in errors:
            print(f"  rpc-error {error.tag} ({error.app_tag}) at {error.path}\n    {error.message}")
    _step(store, "The cluster: VIM connectors CSP-1..3", "vim_connectors.xml")
    _step(store, "Deploy the seed payload on CSP-1", "deploy_csp_1.xml")
    _step(store, "Scenarios 1 and 2: move Group1 from CSP-1 to CSP-2", "deploy_csp_2.xml")
    _step(store, "Scenario 3 set-up: CSP-1, disk on local storage", "deploy_csp_1_local.xml")
    _step(
        store,
        "Scenario 3: a cluster connector, then locator + disk_storage_name gluster",
        "vim_connector_cluster.xml",
        "deploy_gluster.xml",
    )
    running = store.get_config(source=Datastore.RUNNING)
    found = running.xpath("//*[local-name()='credentials']//*[local-name()='value']/text()")
    masked = sorted({str(v) for v in found}) if isinstance(found, list) else []
    print(f"\n== get-config shows VIM passwords as {masked}")
    store.close()
    print(
        "\nThis is the configuration layer only: run the demo without --datamodel to see the"
        "\nlifecycle carry these payloads out on emulated CSP hosts, with escEvents."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esc-orch-demo", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="keep the datastore here")
    parser.add_argument(
        "--datamodel", action="store_true", help="configuration-only demo (no processes)"
    )
    args = parser.parse_args(argv)
    if args.datamodel:
        if args.data_dir:
            args.data_dir.mkdir(parents=True, exist_ok=True)
            return run(args.data_dir)
        with tempfile.TemporaryDirectory(prefix="esc-orch-demo-") as tmp:
            return run(Path(tmp))
    from esc_orch.demo_live import run_live  # noqa: PLC0415 - only the live demo needs it

    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return run_live(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="esc-orch-demo-") as tmp:
        return run_live(Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
