"""The fence agent as configuration of our own: eo:fence_agent inside ESC's vim_connector.

The edit engine, libyang validation, the edit-time checks, get-config (masked, filtered) and
the secrets at rest all take nodes of our namespace (urn:esc-orch:yang:esc-orch) inside ESC's
tree; the retired ``fence_agent_*`` properties are refused with the new form named. After a
refusal the datastore is byte-for-byte unchanged (the SQL dump is compared).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy
from lxml import etree

from esc_orch.daemon.moves import fence_config
from esc_orch.model.config import VimConnector
from esc_orch.model.convert import unit_model
from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.model.schema import EO_NS
from esc_orch.northbound import backend
from esc_orch.northbound.backend import Datastore, DefaultOperation
from esc_orch.northbound.filters import apply_filter
from esc_orch.store.datastore import SqlDatastore
from esc_orch.store.secrets import MARKER
from esc_orch.vocabulary import installed_vocabulary
from payloads import ESC_NS, EXAMPLES, NC_NS, config_of, dump

PASSWORD = "Bm7-unique-bmc-password"
BASE = "/esc:esc_system_config/esc:vim_connectors/esc:vim_connector[esc:id='CSP-1']"
FENCE = f"{BASE}/eo:fence_agent"


def connector(fence: str = "", *, props: str = "", op: str = "") -> str:
    return (
        f'<esc_system_config xmlns="{ESC_NS}" xmlns:nc="{NC_NS}"><vim_connectors><vim_connector>'
        "<id>CSP-1</id><type>FAKE</type><properties>"
        f"<property><name>url</name><value>http://127.0.0.1:9</value></property>{props}"
        "</properties>"
        f"{fence.replace('<fence_agent', f'<fence_agent{op}', 1)}"
        "</vim_connector></vim_connectors></esc_system_config>"
    )


def agent(body: str) -> str:
    return f'<fence_agent xmlns="{EO_NS}">{body}</fence_agent>'


FULL = agent(
    "<type>CSP_SIM_POWER</type><url>http://127.0.0.1:8541</url><host>CSP-1</host>"
    f"<username>admin</username><password>{PASSWORD}</password><timeout>5</timeout>"
    "<properties><property><name>extra</name><value>x</value></property></properties>"
)


@pytest.fixture
def fenced(store: SqlDatastore) -> SqlDatastore:
    store.set_vocabulary(installed_vocabulary())
    store.edit_config(target=Datastore.RUNNING, config=config_of(connector(FULL)))
    return store


def _errors(call: Callable[[], object]) -> list[RpcError]:
    with pytest.raises((RpcError, RpcErrors)) as info:
        call()
    exc = info.value
    return list(exc.errors) if isinstance(exc, RpcErrors) else [exc]


def _edit(store: SqlDatastore, payload: str, **kw: object) -> object:
    return store.edit_config(target=Datastore.RUNNING, config=config_of(payload), **kw)  # type: ignore[arg-type]


def _model(store: SqlDatastore) -> VimConnector:
    (xml,) = store.running_units("vim_connector").values()
    model = unit_model("vim_connector", xml)
    assert isinstance(model, VimConnector)
    return model


def _shown(store: SqlDatastore) -> etree._Element:
    found = store.get_config(source=Datastore.RUNNING).find(
        f"{{{ESC_NS}}}esc_system_config/{{{ESC_NS}}}vim_connectors/{{{ESC_NS}}}vim_connector"
        f"/{{{EO_NS}}}fence_agent"
    )
    assert found is not None
    return found


# -- create, merge, replace, delete ---------------------------------------------------------


def test_created_it_is_stored_typed_and_read_by_the_daemon(fenced: SqlDatastore) -> None:
    model = _model(fenced)
    assert model.fence_agent is not None
    assert (model.fence_agent.type, model.fence_agent.url, model.fence_agent.timeout) == (
        "CSP_SIM_POWER",
        "http://127.0.0.1:8541",
        5,
    )
    found = fence_config(model)
    assert found is not None
    config, host = found
    assert host == "CSP-1"
    assert config.credentials is not None and config.credentials.password == PASSWORD
    assert config.properties["url"] == "http://127.0.0.1:8541"
    assert config.properties["extra"] == "x"


def test_get_config_masks_the_password(fenced: SqlDatastore) -> None:
    shown = _shown(fenced)
    assert shown.findtext(f"{{{EO_NS}}}password") == "********"
    assert shown.findtext(f"{{{EO_NS}}}url") == "http://127.0.0.1:8541"
    assert PASSWORD.encode() not in fenced.running_xml()
    assert PASSWORD.encode() not in etree.tostring(fenced.get_config(source=Datastore.RUNNING))


def test_a_merge_changes_one_leaf_and_the_mask_keeps_the_password(fenced: SqlDatastore) -> None:
    _edit(fenced, connector(agent("<url>http://127.0.0.1:8542</url><password>********</password>")))
    model = _model(fenced)
    assert model.fence_agent is not None
    assert (model.fence_agent.url, model.fence_agent.password) == (
        "http://127.0.0.1:8542",
        PASSWORD,
    )
    assert model.fence_agent.type == "CSP_SIM_POWER"


def test_an_identical_merge_changes_no_byte(fenced: SqlDatastore) -> None:
    before = dict(fenced.running_units("vim_connector"))
    diff = _edit(fenced, connector(FULL))
    assert diff is not None and diff.empty  # type: ignore[attr-defined]
    assert fenced.running_units("vim_connector") == before
    # the same content with an explicit prefix is the same bytes as well
    prefixed = re.sub(r"<(/?)(\w+)", r"<\1eo:\2", FULL).replace(
        f'<eo:fence_agent xmlns="{EO_NS}">', f'<eo:fence_agent xmlns:eo="{EO_NS}">'
    )
    assert "<eo:password>" in prefixed
    diff = _edit(fenced, connector(prefixed))
    assert diff is not None and diff.empty  # type: ignore[attr-defined]
    assert fenced.running_units("vim_connector") == before


def test_a_get_config_round_trip_with_replace_keeps_the_password(fenced: SqlDatastore) -> None:
    shown = fenced.get_config(source=Datastore.RUNNING).find(f"{{{ESC_NS}}}esc_system_config")
    assert shown is not None
    fenced.edit_config(
        target=Datastore.RUNNING,
        config=config_of(etree.tostring(shown)),
        default_operation=DefaultOperation.REPLACE,
    )
    model = _model(fenced)
    assert model.fence_agent is not None and model.fence_agent.password == PASSWORD


def test_replace_of_the_container_drops_what_it_does_not_name(fenced: SqlDatastore) -> None:
    _edit(
        fenced,
        connector(agent("<type>FAKE</type>"), op=' nc:operation="replace"'),
    )
    model = _model(fenced)
    assert model.fence_agent is not None
    assert (model.fence_agent.type, model.fence_agent.url, model.fence_agent.password) == (
        "FAKE",
        None,
        None,
    )


def test_delete_removes_it_and_a_second_delete_is_data_missing(fenced: SqlDatastore) -> None:
    _edit(fenced, connector(agent(""), op=' nc:operation="delete"'))
    assert _model(fenced).fence_agent is None
    assert fence_config(_model(fenced)) is None
    before = dump(fenced)
    errors = _errors(lambda: _edit(fenced, connector(agent(""), op=' nc:operation="delete"')))
    assert (errors[0].tag, errors[0].path) == ("data-missing", FENCE)
    assert dump(fenced) == before


def test_create_of_an_existing_one_is_data_exists(fenced: SqlDatastore) -> None:
    before = dump(fenced)
    errors = _errors(
        lambda: _edit(fenced, connector(agent("<type>FAKE</type>"), op=' nc:operation="create"'))
    )
    assert (errors[0].tag, errors[0].path) == ("data-exists", FENCE)
    assert dump(fenced) == before


# -- refused at edit time, nothing written ----------------------------------------------------

REPLACE = ' nc:operation="replace"'
REFUSED: dict[str, tuple[str, str, str, str]] = {
    "an agent type nobody installed": (
        connector(agent("<type>IPMI</type>")),
        "invalid-value",
        f"{FENCE}/eo:type",
        "no fence agent of type 'IPMI' is installed (installed: CSP_SIM_POWER, FAKE)",
    ),
    "no type": (
        connector(agent("<url>http://127.0.0.1:1</url>"), op=REPLACE),
        "data-missing",
        f"{FENCE}/eo:type",
        'Mandatory node "type"',
    ),
    "a timeout out of range": (
        connector(agent("<type>FAKE</type><timeout>0</timeout>")),
        "invalid-value",
        f"{FENCE}/eo:timeout",
        "range",
    ),
    "an unknown leaf in the container": (
        connector(agent("<type>FAKE</type><plug>3</plug>")),
        "unknown-element",
        f"{FENCE}/eo:plug",
        "unknown element",
    ),
    "a username without a password": (
        connector(agent("<type>FAKE</type><username>admin</username>"), op=REPLACE),
        "data-missing",
        f"{FENCE}/eo:password",
        "has a username but no password",
    ),
    "CSP_SIM_POWER without a url (the agent's own check)": (
        connector(
            agent("<type>CSP_SIM_POWER</type><username>u</username><password>p</password>"),
            op=REPLACE,
        ),
        "invalid-value",
        f"{FENCE}/eo:url",
        "fence agent CSP_SIM_POWER: the url of the power controller must be http(s)",
    ),
    "CSP_SIM_POWER without credentials (the agent's own check)": (
        connector(agent("<type>CSP_SIM_POWER</type><url>http://h:1</url>"), op=REPLACE),
        "invalid-value",
        f"{FENCE}/eo:password",
        "a username and a password (the power controller's login) are needed",
    ),
    "the retired fence_agent_type property": (
        connector(
            props="<property><name>fence_agent_type</name><value>CSP_SIM_POWER</value></property>"
        ),
        "invalid-value",
        f"{BASE}/esc:properties/esc:property[esc:name='fence_agent_type']/esc:name",
        f"is no longer read: a fence agent is configured in the vim_connector's fence_agent "
        f"container (namespace {EO_NS}); put this value in eo:fence_agent/type",
    ),
    "a retired agent property": (
        connector(props="<property><name>fence_agent_ssl</name><value>1</value></property>"),
        "invalid-value",
        f"{BASE}/esc:properties/esc:property[esc:name='fence_agent_ssl']/esc:name",
        "eo:fence_agent/properties/property 'ssl'",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_at_edit_time_and_nothing_written(name: str, fenced: SqlDatastore) -> None:
    payload, tag, path, words = REFUSED[name]
    before = dump(fenced)
    errors = _errors(lambda: _edit(fenced, payload))
    assert (errors[0].tag, errors[0].path) == (tag, path), errors
    assert words in errors[0].message, errors[0].message
    assert dump(fenced) == before


TYPE_ERRORS = ("a timeout out of range", "an unknown leaf in the container")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_validate_and_commit_refuse_the_same(name: str, fenced: SqlDatastore) -> None:
    payload, tag, path, _words = REFUSED[name]
    if name in TYPE_ERRORS:
        pytest.skip("an edit of the candidate refuses bad types and unknown nodes already")
    before = dump(fenced)
    errors = _errors(lambda: fenced.validate(source=config_of(payload)))
    assert (errors[0].tag, errors[0].path) == (tag, path), errors
    fenced.edit_config(
        target=Datastore.CANDIDATE, config=config_of(payload), test_option=backend.TestOption.SET
    )
    errors = _errors(fenced.commit)
    assert (errors[0].tag, errors[0].path) == (tag, path), errors
    fenced.discard_changes()
    assert dump(fenced) == before


def test_the_type_is_matched_without_regard_to_case(fenced: SqlDatastore) -> None:
    _edit(fenced, connector(agent("<type>csp_sim_power</type>")))
    assert fence_config(_model(fenced)) is not None


def test_a_stored_connector_with_retired_properties_does_not_block_other_edits(
    store: SqlDatastore,
) -> None:
    """Rows written before eo:fence_agent existed (or not yet migrated) are checked only when
    edited: an unrelated edit still passes."""
    retired = "<property><name>fence_agent_type</name><value>CSP_SIM_POWER</value></property>"
    _edit(store, connector())
    with store.engine.begin() as conn:  # as a row written before the retirement
        (xml,) = conn.exec_driver_sql("SELECT xml FROM config_unit").one()
        conn.execute(
            sqlalchemy.text("UPDATE config_unit SET xml = :x"),
            {"x": bytes(xml).replace(b"</properties>", retired.encode() + b"</properties>")},
        )
    store.close()
    store = SqlDatastore.open(url=str(store.engine.url.render_as_string(hide_password=False)))
    store.set_vocabulary(installed_vocabulary())
    assert b"fence_agent_type" in b"".join(store.running_units("vim_connector").values())
    flavor = (
        f'<esc_datamodel xmlns="{ESC_NS}"><flavors><flavor><name>f</name><vcpus>1</vcpus>'
        "<memory_mb>64</memory_mb><root_disk_mb>0</root_disk_mb></flavor></flavors>"
        "</esc_datamodel>"
    )
    _edit(store, flavor)
    errors = _errors(lambda: _edit(store, connector(props=retired)))
    assert errors[0].app_tag == "retired-fence-property"
    store.close()


# -- filters ----------------------------------------------------------------------------------


def _filtered(store: SqlDatastore, flt: str) -> etree._Element:
    element = etree.fromstring(flt)
    return apply_filter(store.get_config(source=Datastore.RUNNING), element)


def test_a_subtree_filter_selects_the_fence_agent(fenced: SqlDatastore) -> None:
    out = _filtered(
        fenced,
        f'<filter xmlns="{NC_NS}" type="subtree"><esc_system_config xmlns="{ESC_NS}">'
        f'<vim_connectors><vim_connector><id>CSP-1</id><fence_agent xmlns="{EO_NS}">'
        "<url/></fence_agent></vim_connector></vim_connectors></esc_system_config></filter>",
    )
    (vc,) = out.iter(f"{{{ESC_NS}}}vim_connector")
    assert [etree.QName(c).localname for c in vc] == ["id", "fence_agent"]
    fence = vc.find(f"{{{EO_NS}}}fence_agent")
    assert fence is not None
    assert [(etree.QName(c).localname, c.text) for c in fence] == [("url", "http://127.0.0.1:8541")]


def test_an_xpath_filter_with_the_eo_prefix_masks_the_password(fenced: SqlDatastore) -> None:
    out = _filtered(
        fenced,
        f'<filter xmlns="{NC_NS}" xmlns:esc="{ESC_NS}" xmlns:eo="{EO_NS}" type="xpath" '
        'select="/esc:esc_system_config/esc:vim_connectors/esc:vim_connector/eo:fence_agent"/>',
    )
    (fence,) = out.iter(f"{{{EO_NS}}}fence_agent")
    assert fence.findtext(f"{{{EO_NS}}}password") == "********"
    assert fence.getparent() is not None
    assert fence.getparent().findtext(f"{{{ESC_NS}}}id") == "CSP-1"  # the key is kept


# -- secrets at rest --------------------------------------------------------------------------


def test_the_fence_password_is_encrypted_at_rest(tmp_path: Path) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    _edit(store, connector(FULL))
    files = [p.name for p in tmp_path.iterdir() if p.is_file()]
    assert files
    assert [n for n in files if PASSWORD.encode() in (tmp_path / n).read_bytes()] == []
    with store.engine.connect() as conn:
        (row,) = conn.exec_driver_sql("SELECT xml FROM config_unit").all()
    assert MARKER.encode() in bytes(row[0])
    store.close()
    again = SqlDatastore.open(data_dir=tmp_path)
    model = _model(again)
    assert model.fence_agent is not None and model.fence_agent.password == PASSWORD
    again.close()


def test_the_example_payload_is_valid_with_the_seed_connectors(store: SqlDatastore) -> None:
    store.set_vocabulary(installed_vocabulary())
    for name in ("vim_connectors.xml", "vim_connector_fence.xml"):
        store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / name))
    models = {
        unit_model("vim_connector", x).id: unit_model("vim_connector", x)
        for x in store.running_units("vim_connector").values()
    }
    assert models["CSP-1"].fence_agent is not None
    assert models["CSP-2"].fence_agent is None
    assert models["CSP-1"].users.user[0].id == "admin"  # the merge kept the VIM's user
