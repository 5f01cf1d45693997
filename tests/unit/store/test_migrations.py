"""Schema migrations: the head revision equals the models, a database of the previous release
is refused by the daemon and upgraded by ``esc-orchd db upgrade``, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from lxml import etree
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from esc_orch.model.actions import CreateVm
from esc_orch.model.lifecycle import AppliedVm, DeploymentState, LifecycleOperation, VmIdentity
from esc_orch.model.record import DeploymentRecord, VmRecord
from esc_orch.model.vim import Day0File, NicSpec, Storage, VmSpec
from esc_orch.northbound.backend import Datastore
from esc_orch.store import codec, migrate
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.journal import LifecycleStore
from esc_orch.store.migrate import SchemaError, SchemaState

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TENANT_XML = b'<tenant xmlns="http://www.cisco.com/esc/esc"><name>old-tenant</name></tenant>'
EVENT_XML = (
    b'<escEvent xmlns="http://www.cisco.com/esc/esc"><status>SUCCESS</status>'
    b"<status_code>200</status_code><status_message>Tenant [old-tenant] created successfully"
    b"</status_message><tenant>old-tenant</tenant><tenant_id>old-tenant</tenant_id>"
    b"<event><type>CREATE_TENANT</type><details>old-tenant</details></event></escEvent>"
)


@functools.cache
def _schema_0_1_0() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_0_1_0", FIXTURES / "schema_0_1_0.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the ORM resolves Mapped[...] annotations through it
    spec.loader.exec_module(module)
    return module


def _make_0_1_0_database(url: str) -> None:
    """What esc-orch 0.1.0 left: its create_all, a tenant, the event of its creation."""
    old = _schema_0_1_0()
    engine = create_engine(url)
    old.Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(
            old.ConfigUnitRow(
                datastore="running",
                kind="tenant",
                key="old-tenant",
                parent_key=None,
                xml=TENANT_XML,
            )
        )
        session.add(old.MetaRow(name="event_id", value=1))
        session.add(old.MetaRow(name="txid", value=1))
        session.add(
            old.EventRow(
                id=1, event_time=1_700_000_000_000, event_type="CREATE_TENANT", payload=EVENT_XML
            )
        )
    engine.dispose()


def _db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esc_orch.daemon.cli", "db", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _where(store_url: str, tmp_path: Path) -> list[str]:
    """The esc-orchd db options that designate ``store_url``."""
    if store_url.startswith("sqlite"):
        return ["--data-dir", str(tmp_path)]
    config = tmp_path / "esc-orchd.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return ["--config", str(config)]


def test_migrations_from_scratch_equal_the_models(store_url: str) -> None:
    """A model change without its revision fails here (what autogenerate would write)."""
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
    assert migrate.model_differences(engine) == []
    assert migrate.status(engine).state is SchemaState.CURRENT
    engine.dispose()


def test_baseline_revision_is_the_0_1_0_schema(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), migrate.BASELINE)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert list(compare_metadata(context, _schema_0_1_0().Base.metadata)) == []
    engine.dispose()


def test_a_fresh_database_is_created_at_the_head(store_url: str) -> None:
    store = SqlDatastore.open(url=store_url)
    assert migrate.status(store.engine).state is SchemaState.CURRENT
    store.close()
    SqlDatastore.open(url=store_url).close()  # and opens again as is


def test_a_0_1_0_database_is_refused_then_upgraded(store_url: str, tmp_path: Path) -> None:
    _make_0_1_0_database(store_url)
    with pytest.raises(SchemaError) as refused:
        SqlDatastore.open(url=store_url)
    assert refused.value.status.state is SchemaState.UNVERSIONED
    assert "esc-orchd db upgrade" in str(refused.value)

    where = _where(store_url, tmp_path)
    status = _db("status", *where)
    assert status.returncode == 1, status.stderr
    assert "schema unversioned" in status.stdout and "esc-orchd db upgrade" in status.stdout
    assert _db("current", *where).stdout.strip() == "none"

    upgraded = _db("upgrade", *where)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"to {migrate.head_revision()}" in upgraded.stdout
    assert _db("current", *where).stdout.strip() == migrate.head_revision()
    assert _db("status", *where).returncode == 0
    again = _db("upgrade", *where)
    assert again.returncode == 0 and "already at the head" in again.stdout

    store = SqlDatastore.open(url=store_url)
    running = etree.tostring(store.get_config(source=Datastore.RUNNING))
    assert b"<name>old-tenant</name>" in running
    assert [e.event_type for e in store.events.read()] == ["CREATE_TENANT"]
    assert migrate.model_differences(store.engine) == []
    store.close()


def test_a_revision_from_a_newer_release_is_refused(store_url: str, tmp_path: Path) -> None:
    SqlDatastore.open(url=store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaError) as refused:
        SqlDatastore.open(url=store_url)
    assert refused.value.status.state is SchemaState.UNKNOWN
    assert "newer release" in str(refused.value)
    upgrade = _db("upgrade", *_where(store_url, tmp_path))
    assert upgrade.returncode == 1 and "newer release" in upgrade.stderr


def test_serve_refuses_an_out_of_date_database_and_names_the_command(tmp_path: Path) -> None:
    _make_0_1_0_database(f"sqlite:///{tmp_path / 'esc-orch.sqlite'}")
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "esc_orch.daemon.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 1
    assert "out of date" in served.stderr
    assert f"esc-orchd db upgrade --data-dir {tmp_path}" in served.stderr


LIFECYCLE_0_1_0 = FIXTURES / "lifecycle_0_1_0.json"  # scripts/make_lifecycle_0_1_0.py
A0 = VmIdentity(
    deployment="dep-a",
    group="g1",
    index=0,
    uuid="00000000-0000-4000-8000-00000000000a",
    vmid="vmid-a0",
)
A1 = VmIdentity(
    deployment="dep-a",
    group="g1",
    index=1,
    uuid="00000000-0000-4000-8000-00000000000b",
    vmid="vmid-a1",
)
B0 = VmIdentity(
    deployment="dep-b",
    group="g1",
    index=0,
    uuid="00000000-0000-4000-8000-00000000000c",
    vmid="vmid-b0",
)


def _applied(vm: VmIdentity, connector: str) -> AppliedVm:
    """The spec the fixture's 0.1.0 run applied to ``vm`` (scripts/make_lifecycle_0_1_0.py)."""
    return AppliedVm(
        connector_id=connector,
        vim_project="admin",
        spec=VmSpec(
            name=vm.name,
            vcpus=2,
            memory_mb=2048,
            disk_mb=4096,
            image="csr.qcow2",
            interfaces=(NicSpec(nicid=0, network="mgmt", ip_address="10.0.0.5"),),
            storage=Storage.GLUSTER,
            day0=(Day0File(dst="iosxe_config.txt", content=b"hostname r1\n"),),
        ),
    )


def _fixture_rows() -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = json.loads(LIFECYCLE_0_1_0.read_text("utf-8"))
    for table in rows.values():
        for row in table:
            for k, v in row.items():
                if isinstance(v, dict) and set(v) == {"base64"}:
                    row[k] = base64.b64decode(v["base64"])
    return rows


def _make_0_1_0_lifecycle_database(url: str) -> dict[str, list[dict[str, Any]]]:
    """A 0.1.0 database stamped 0001: a tenant, and the lifecycle rows 0.1.0's code wrote."""
    old = _schema_0_1_0()
    rows = _fixture_rows()
    engine = create_engine(url)
    old.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        tables = old.Base.metadata.tables
        connection.execute(
            tables["config_unit"].insert(),
            [
                dict(
                    datastore="running",
                    kind="tenant",
                    key="old-tenant",
                    parent_key=None,
                    xml=TENANT_XML,
                )
            ],
        )
        for name in ("meta", "event_log", "lifecycle_state"):
            connection.execute(tables[name].insert(), rows[name])
        for journal_row in rows["lifecycle_journal"]:  # seq from the database, in order
            connection.execute(
                tables["lifecycle_journal"].insert(),
                {k: v for k, v in journal_row.items() if k != "seq"},
            )
        command.stamp(migrate.alembic_config(connection), migrate.BASELINE)
    engine.dispose()
    return rows


def test_a_0_1_0_database_with_lifecycle_rows_is_refused_then_upgraded_with_its_data(
    store_url: str, tmp_path: Path
) -> None:
    """0002 turns 0.1.0's lifecycle memory into records the daemon's LifecycleStore reads."""
    _make_0_1_0_lifecycle_database(store_url)
    engine = create_engine(store_url)
    behind = migrate.status(engine)
    # 0002 converts the lifecycle rows; later revisions (if any) follow it.
    assert (behind.state, behind.current, behind.pending[0]) == (
        SchemaState.BEHIND,
        "0001",
        "0002",
    )
    assert behind.pending[-1] == migrate.head_revision()
    with pytest.raises(SchemaError, match=r"out of date .* esc-orchd db upgrade"):
        migrate.ensure_current(engine)
    engine.dispose()

    upgraded = _db("upgrade", *_where(store_url, tmp_path))
    assert upgraded.returncode == 0, upgraded.stderr
    current = _db("current", *_where(store_url, tmp_path)).stdout.strip()
    assert current == migrate.head_revision()

    ds = SqlDatastore.open(url=store_url)
    lifecycle = LifecycleStore(engine=ds.engine, events=ds.events)
    try:
        records = {r.key: r for r in asyncio.run(lifecycle.records())}
        intents = asyncio.run(lifecycle.unfinished())
    finally:
        lifecycle.close()
    assert set(records) == {("t1", "dep-a"), ("t1", "dep-b")}

    a = records["t1", "dep-a"]
    assert a.depid == "depid-dep-a"
    assert a.identities() == (A0, A1)
    assert a.vm(A0.name) == VmRecord(
        identity=A0, applied=_applied(A0, "csp-1"), alive=True, unmonitored=True
    )
    assert a.vm(A1.name) == VmRecord(identity=A1, applied=_applied(A1, "csp-2"), wanted_off=True)
    assert (a.state, a.ever_active, a.run, a.owed_service_action) == (
        DeploymentState.ACTIVE,
        True,
        LifecycleOperation.UPDATE,
        "STOP",
    )
    assert (a.step, a.last_failure) == (None, None)

    b = records["t1", "dep-b"]
    assert b == DeploymentRecord(
        tenant="t1",
        name="dep-b",
        depid="depid-dep-b",
        vms=(VmRecord(identity=B0),),
        run=LifecycleOperation.DEPLOY,
    )
    assert b.state is DeploymentState.INERT and not b.ever_active

    # the open intents 0.1.0 journaled read back with today's codec
    assert [(i.step_id, i.operation) for i in intents] == [
        ("s4", LifecycleOperation.UPDATE),
        ("s5", LifecycleOperation.DEPLOY),
    ]
    assert intents[0].action == CreateVm(
        vm=A1, connector_id="csp-1", vim_project="admin", spec=_applied(A1, "csp-1").spec
    )
    with ds.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT deployment, state, record FROM lifecycle_state ORDER BY deployment")
        ).all()
        journal = connection.execute(
            text("SELECT step_id, status, detail FROM lifecycle_journal ORDER BY seq")
        ).all()
    # the column is the record's state, and the JSON is what the codec writes: every field
    # 0002 wrote reads back unchanged (fields added to the record since then take defaults)
    assert [(row[0], row[1]) for row in stored] == [
        ("dep-a", "SERVICE_ACTIVE_STATE"),
        ("dep-b", "SERVICE_INERT_STATE"),
    ]
    for row in stored:
        again = json.loads(codec.record_to_json(codec.record_from_json(row[2])))
        assert _contained(json.loads(row[2]), again)
    assert [tuple(row) for row in journal] == [
        ("s1", "done", None),
        ("s2", "done", None),
        ("s3", "replanned", "replan: VM not on csp-2"),
        ("s4", None, None),
        ("s5", None, None),
    ]
    running = etree.tostring(ds.get_config(source=Datastore.RUNNING))
    assert b"<name>old-tenant</name>" in running
    assert [e.event_type for e in ds.events.read()] == [
        "VM_DEPLOYED",
        "VM_DEPLOYED",
        "VM_ALIVE",
        "SERVICE_ALIVE",
    ]
    assert migrate.model_differences(ds.engine) == []
    ds.close()


def test_0002_downgrades_back_to_the_memory_0_1_0_wrote(store_url: str) -> None:
    """Record -> memory: the 0.1.0 rows come back as they were (what 0.1.0 can hold)."""
    rows = _make_0_1_0_lifecycle_database(store_url)
    engine = create_engine(store_url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), migrate.BASELINE)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert list(compare_metadata(context, _schema_0_1_0().Base.metadata)) == []
        state = connection.execute(
            text("SELECT tenant, deployment, depid, active, memory FROM lifecycle_state")
        ).all()
        journal = connection.execute(
            text("SELECT step_id, status, detail FROM lifecycle_journal ORDER BY seq")
        ).all()
    engine.dispose()
    back = {(r[0], r[1]): (r[2], bool(r[3]), json.loads(r[4])) for r in state}
    assert back == {
        (r["tenant"], r["deployment"]): (r["depid"], bool(r["active"]), json.loads(r["memory"]))
        for r in rows["lifecycle_state"]
    }
    assert [tuple(r) for r in journal] == [
        (r["step_id"], r["status"], r["detail"]) for r in rows["lifecycle_journal"]
    ]


def test_the_refusal_as_a_json_line(tmp_path: Path) -> None:
    """--log-format json: the same refusal as one JSON object, the command in its own field."""
    _make_0_1_0_database(f"sqlite:///{tmp_path / 'esc-orch.sqlite'}")
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "esc_orch.daemon.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 1
    lines = [json.loads(line) for line in served.stderr.splitlines()]
    refusal = next(line for line in lines if line["message"] == "cannot serve")
    assert refusal["level"] == "ERROR" and refusal["logger"] == "esc_orch.daemon"
    assert refusal["run"] == f"esc-orchd db upgrade --data-dir {tmp_path}"
    assert "out of date" in refusal["error"]


def _contained(written: object, read: object) -> bool:
    """Every key and value of ``written`` is in ``read`` (which may hold more keys)."""
    if isinstance(written, dict):
        return isinstance(read, dict) and all(
            k in read and _contained(v, read[k]) for k, v in written.items()
        )
    if isinstance(written, list):
        return (
            isinstance(read, list)
            and len(written) == len(read)
            and all(_contained(a, b) for a, b in zip(written, read, strict=True))
        )
    return written == read


SECOND_REVISION = '''"""test only: meta gets a note column"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meta") as batch:
        batch.add_column(sa.Column("note", sa.String(32), nullable=False, server_default="kept"))


def downgrade() -> None:
    with op.batch_alter_table("meta") as batch:
        batch.drop_column("note")
'''


def test_a_database_behind_the_head_is_refused_then_upgraded_with_its_data(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the next release's revision will do: shown with a second revision (test only)."""
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, migrations)
    head = migrate.head_revision()  # the next release's revision comes after today's head
    (migrations / "versions" / "9999_test_note.py").write_text(
        SECOND_REVISION.replace("{head}", head)
    )
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", migrations)
    migrate.script_directory.cache_clear()
    try:
        engine = create_engine(store_url)
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), head)
            connection.execute(text("INSERT INTO meta (name, value) VALUES ('event_id', 41)"))
        behind = migrate.status(engine)
        assert (behind.state, behind.current, behind.pending) == (
            SchemaState.BEHIND,
            head,
            ("9999",),
        )
        with pytest.raises(SchemaError, match=r"out of date .* esc-orchd db upgrade"):
            migrate.ensure_current(engine)
        before, after = migrate.upgrade(engine)
        assert before.state is SchemaState.BEHIND
        assert (after.state, after.current) == (SchemaState.CURRENT, "9999")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, value, note FROM meta")).all()
        assert [tuple(r) for r in rows] == [("event_id", 41, "kept")]
        engine.dispose()
    finally:
        migrate.script_directory.cache_clear()
