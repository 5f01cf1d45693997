"""Revision 0006 carries the retired ``fence_agent_*`` properties of stored VIM connectors to
``eo:fence_agent`` (and back on downgrade), the encrypted password included, on SQLite and
PostgreSQL; a database at 0005 is refused by the daemon until ``esc-orchd db upgrade``."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from lxml import etree
from sqlalchemy import Engine, create_engine, text

from esc_orch.daemon.moves import fence_config
from esc_orch.model.config import VimConnector
from esc_orch.model.convert import unit_model
from esc_orch.northbound.backend import Datastore
from esc_orch.store import migrate
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.migrate import SchemaError
from esc_orch.store.secrets import MARKER
from esc_orch.store.tables import sqlite_url
from payloads import ESC_NS, config_of

VIM_PASSWORD = "Vq2-vim-password"
BMC_PASSWORD = "Pw9-bmc-password"
FENCE_PROPS = (
    ("fence_agent_type", "CSP_SIM_POWER"),
    ("fence_agent_url", "http://127.0.0.1:8541"),
    ("fence_agent_timeout", "2.5"),
    ("fence_agent_host", "CSP-1"),
    ("fence_agent_user", "power"),
    ("fence_agent_login", "admin"),
    ("fence_agent_ssl", "no"),
)


def _connector(cid: str, *, power_user: bool = True) -> str:
    users = (
        "<user><id>admin</id><credentials><properties><property><name>password</name>"
        f"<value>{VIM_PASSWORD}</value></property></properties></credentials></user>"
    )
    if power_user:
        users += (
            "<user><id>power</id><credentials><properties><property><name>password</name>"
            f"<value>{BMC_PASSWORD}</value></property></properties></credentials></user>"
        )
    return (
        f'<esc_system_config xmlns="{ESC_NS}"><vim_connectors><vim_connector><id>{cid}</id>'
        "<type>FAKE</type><properties><property><name>url</name>"
        f"<value>http://127.0.0.1:8441</value></property></properties><users>{users}</users>"
        "</vim_connector></vim_connectors></esc_system_config>"
    )


def _add_retired_properties(engine: Engine, cid: str, props: tuple[tuple[str, str], ...]) -> None:
    """As the daemon before eo:fence_agent stored them (the password stays as stored)."""
    extra = "".join(
        f"<property><name>{n}</name><value>{v}</value></property>" for n, v in props
    ).encode()
    with engine.begin() as conn:
        (xml,) = conn.execute(
            text("SELECT xml FROM config_unit WHERE kind = 'vim_connector' AND key = :k"),
            {"k": cid},
        ).one()
        conn.execute(
            text("UPDATE config_unit SET xml = :x WHERE kind = 'vim_connector' AND key = :k"),
            {"x": bytes(xml).replace(b"</properties>", extra + b"</properties>", 1), "k": cid},
        )


def _models(store: SqlDatastore) -> dict[str, VimConnector]:
    out = {}
    for xml in store.running_units("vim_connector").values():
        model = unit_model("vim_connector", xml)
        out[model.id] = model
    return out


def _old_database(url: str, **open_kw: object) -> None:
    """A database at 0005 holding connectors with the retired properties."""
    store = SqlDatastore.open(url=url, **open_kw)  # type: ignore[arg-type]
    for cid in ("CSP-1", "CSP-2"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(_connector(cid)))
    store.edit_config(
        target=Datastore.CANDIDATE, config=config_of(_connector("CSP-3", power_user=False))
    )
    store.close()
    engine = create_engine(url)
    _add_retired_properties(engine, "CSP-1", FENCE_PROPS)
    _add_retired_properties(engine, "CSP-2", (("fence_agent_url", "http://x"),))  # no type
    _add_retired_properties(
        engine, "CSP-3", (("fence_agent_type", "FAKE"), ("fence_agent_user", "nobody"))
    )
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0005")
    engine.dispose()


def _upgrade(url: str) -> None:
    engine = create_engine(url)
    with pytest.raises(SchemaError, match="esc-orchd db upgrade"):
        migrate.ensure_current(engine)
    migrate.upgrade(engine)
    engine.dispose()


def test_the_retired_properties_become_eo_fence_agent(store_url: str) -> None:
    _old_database(store_url)
    _upgrade(store_url)
    store = SqlDatastore.open(url=store_url)
    models = _models(store)
    fence = models["CSP-1"].fence_agent
    assert fence is not None
    assert (fence.type, fence.url, fence.host, fence.timeout) == (
        "CSP_SIM_POWER",
        "http://127.0.0.1:8541",
        "CSP-1",
        3,
    )
    assert (fence.username, fence.password) == ("admin", BMC_PASSWORD)
    assert [(p.name, p.value) for p in fence.properties.property] == [("ssl", "no")]
    # the power user is gone, the VIM's own stays; no fence_agent_* property is left
    assert [u.id for u in models["CSP-1"].users.user] == ["admin"]
    assert [p.name for p in models["CSP-1"].properties.property] == ["url"]
    found = fence_config(models["CSP-1"])
    assert found is not None and found[0].credentials is not None
    assert found[0].credentials.password == BMC_PASSWORD
    # no type: the old daemon configured no agent; the inert properties are dropped
    assert models["CSP-2"].fence_agent is None
    assert [p.name for p in models["CSP-2"].properties.property] == ["url"]
    # the candidate is carried too; a user that holds no password gives no credentials
    with store.engine.connect() as conn:
        (xml,) = conn.execute(
            text("SELECT xml FROM config_unit WHERE datastore = 'candidate' AND key = 'CSP-3'")
        ).one()
    candidate = unit_model("vim_connector", bytes(xml))
    assert candidate.fence_agent is not None
    assert (candidate.fence_agent.type, candidate.fence_agent.username) == ("FAKE", None)
    # what the migration wrote is what the edit engine would: an identical edit changes nothing
    shown = store.get_config(source=Datastore.RUNNING)
    diff = store.edit_config(target=Datastore.RUNNING, config=config_of(_strip(shown)))
    assert diff is not None and diff.empty
    store.close()


def _strip(data: etree._Element) -> bytes:
    top = data.find(f"{{{ESC_NS}}}esc_system_config")
    assert top is not None
    return etree.tostring(top)


def test_downgrade_writes_the_properties_back(store_url: str) -> None:
    _old_database(store_url)
    _upgrade(store_url)
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0005")
        command.upgrade(migrate.alembic_config(connection), "head")  # and round again
    engine.dispose()
    store = SqlDatastore.open(url=store_url)
    fence = _models(store)["CSP-1"].fence_agent
    assert fence is not None
    assert (fence.username, fence.password, fence.url) == (
        "admin",
        BMC_PASSWORD,
        "http://127.0.0.1:8541",
    )
    store.close()


def test_an_encrypted_password_is_carried_encrypted(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    _old_database(url, key_file=tmp_path / "secrets.key")
    _upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [bytes(r[0]) for r in conn.execute(text("SELECT xml FROM config_unit"))]
    engine.dispose()
    assert all(BMC_PASSWORD.encode() not in r for r in rows)
    (csp1,) = [r for r in rows if b"<id>CSP-1</id>" in r]
    assert b"<eo:password>" + MARKER.encode() in csp1
    store = SqlDatastore.open(url=url, key_file=tmp_path / "secrets.key")
    fence = _models(store)["CSP-1"].fence_agent
    assert fence is not None and fence.password == BMC_PASSWORD
    store.close()
