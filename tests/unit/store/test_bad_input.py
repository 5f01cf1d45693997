"""Every bad input of issue #2: the right RFC 6241 error-tag with an error-path, and the
datastore byte-for-byte unchanged afterwards (the SQLite dump is compared)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.northbound import backend
from esc_orch.northbound.backend import Datastore, ErrorOption
from esc_orch.store.datastore import SqlDatastore
from payloads import ESC_NS, EXAMPLES, config_of, dump, esc
from unit.northbound.test_esc_rpc_error_paths import fully_prefixed

SEEDED = [EXAMPLES / "vim_connectors.xml", EXAMPLES / "deploy_csp_1.xml"]


@pytest.fixture
def seeded(store: SqlDatastore) -> SqlDatastore:
    for payload in SEEDED:
        store.edit_config(target=Datastore.RUNNING, config=config_of(payload))
    return store


def _errors(call: Callable[[], object]) -> list[RpcError]:
    with pytest.raises((RpcError, RpcErrors)) as info:
        call()
    exc = info.value
    return list(exc.errors) if isinstance(exc, RpcErrors) else [exc]


def _edit(store: SqlDatastore, xml: str | bytes) -> Callable[[], object]:
    return lambda: store.edit_config(target=Datastore.RUNNING, config=config_of(xml))


DEPLOYMENT = (EXAMPLES / "deploy_csp_1.xml").read_text()


def _variant(old: str, new: str) -> str:
    assert old in DEPLOYMENT
    return DEPLOYMENT.replace(old, new, 1)


CASES: dict[str, tuple[str, str | None, str]] = {
    # name: (payload, expected tag, expected path suffix)
    "unknown element": (
        _variant("<bootup_time>600</bootup_time>", "<bootup_time>600</bootup_time><warp>9</warp>"),
        "unknown-element",
        "esc:vm_group[esc:name='Group1']/esc:warp",
    ),
    "wrong namespace": (
        DEPLOYMENT.replace(ESC_NS, "http://example.com/not-esc"),
        "unknown-namespace",
        "/",
    ),
    "missing namespace": (
        DEPLOYMENT.replace(f' xmlns="{ESC_NS}"', ""),
        "unknown-namespace",
        "/",
    ),
    "enumeration": (
        _variant("<metric_cond>GT</metric_cond>", "<metric_cond>GREATER</metric_cond>"),
        "invalid-value",
        "esc:kpi[esc:event_name='VM_ALIVE']/esc:metric_cond",
    ),
    "range": (
        _variant("<max_retries>1</max_retries>", "<max_retries>0</max_retries>"),
        "invalid-value",
        "esc:recovery_policy/esc:max_retries",
    ),
    "duplicate list key": (
        _variant("<nicid>1</nicid>", "<nicid>0</nicid>"),
        "bad-element",
        "esc:interfaces/esc:interface[esc:nicid='0']",
    ),
    "missing key": (
        _variant("<nicid>1</nicid>", ""),
        "missing-element",
        "esc:interfaces/esc:interface",
    ),
    "missing mandatory leaf": (  # a new deployment: merging into "dep" would keep its image
        _variant("<image>csr1000v-universalk9.16.06.01.qcow2</image>", "").replace(
            "<name>dep</name>", "<name>dep2</name>"
        ),
        "data-missing",
        "esc:deployment[esc:name='dep2']/esc:vm_group[esc:name='Group1']/esc:image",
    ),
    "dangling reference": (
        _variant("<flavor>FLAVOR_2_4096_10000</flavor>", "<flavor>NO_SUCH_FLAVOR</flavor>"),
        "data-missing",
        "esc:vm_group[esc:name='Group1']/esc:flavor",
    ),
    "dangling connector": (
        _variant("<vim_id>CSP-1</vim_id>", "<vim_id>CSP-9</vim_id>"),
        "data-missing",
        "esc:locator/esc:vim_id",
    ),
    "create of an existing entry": (
        esc('<tenants><tenant nc:operation="create"><name>name1</name></tenant></tenants>'),
        "data-exists",
        "esc:tenant[esc:name='name1']",
    ),
    "delete of a missing entry": (
        esc('<tenants><tenant nc:operation="delete"><name>ghost</name></tenant></tenants>'),
        "data-missing",
        "esc:tenant[esc:name='ghost']",
    ),
    "delete of a flavor in use": (
        esc(
            '<flavors><flavor nc:operation="delete"><name>FLAVOR_2_4096_10000</name>'
            "</flavor></flavors>"
        ),
        "data-missing",
        "esc:vm_group[esc:name='Group1']/esc:flavor",
    ),
    "unknown operation": (
        esc('<tenants><tenant nc:operation="obliterate"><name>name1</name></tenant></tenants>'),
        "bad-attribute",
        "esc:tenant",
    ),
    "operational data": (
        esc("<opdata><tenants/></opdata>"),
        "invalid-value",
        "esc:opdata",
    ),
    "must violation": (
        _variant("<min_active>1</min_active>", "<min_active>3</min_active>"),
        "operation-failed",
        "esc:scaling",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(name: str, seeded: SqlDatastore) -> None:
    payload, tag, path_suffix = CASES[name]
    before = dump(seeded)
    before_config = etree.tostring(seeded.get_config(source=Datastore.RUNNING))
    errors = _errors(_edit(seeded, payload))
    assert errors[0].tag == tag, errors
    assert errors[0].path is not None and errors[0].path.endswith(path_suffix), errors[0].path
    assert dump(seeded) == before
    assert etree.tostring(seeded.get_config(source=Datastore.RUNNING)) == before_config


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case[2] != "/"))
def test_error_paths_are_prefixed_on_every_step(name: str, seeded: SqlDatastore) -> None:
    errors = _errors(_edit(seeded, CASES[name][0]))
    assert all(e.path and fully_prefixed(e.path) for e in errors), [e.path for e in errors]


def test_half_good_edit_applies_nothing(seeded: SqlDatastore) -> None:
    """A good tenant and a bad deployment in one edit: stop-on-error keeps neither."""
    before = dump(seeded)
    payload = esc(
        "<tenants><tenant><name>fresh</name></tenant>"
        '<tenant><name>name1</name><deployments><deployment nc:operation="create">'
        "<name>dep</name></deployment></deployments></tenant></tenants>"
    )
    errors = _errors(_edit(seeded, payload))
    assert errors[0].tag == "data-exists"
    assert dump(seeded) == before


@pytest.mark.parametrize(
    "document",
    [
        b"<esc_datamodel xmlns='http://www.cisco.com/esc/esc'><tenants>",
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;">]><esc_datamodel xmlns="http://www.cisco.com/esc/esc">'
        b"<tenants><tenant><name>&c;</name></tenant></tenants></esc_datamodel>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<esc_datamodel xmlns="http://www.cisco.com/esc/esc"><tenants><tenant><name>&e;'
        b"</name></tenant></tenants></esc_datamodel>",
    ],
    ids=["unclosed", "garbage", "billion-laughs", "external-entity"],
)
def test_malformed_xml_and_entities_are_refused(document: bytes, seeded: SqlDatastore) -> None:
    before = dump(seeded)
    with pytest.raises(RpcError) as info:
        parse_xml(document)
    assert info.value.tag == "malformed-message"
    assert b"root:" not in str(info.value).encode()  # /etc/passwd was never read
    assert dump(seeded) == before


def test_fifty_megabyte_payload_is_too_big(seeded: SqlDatastore) -> None:
    before = dump(seeded)
    filler = "<tenant><name>t{}</name></tenant>"
    chunk = "".join(filler.format(i) for i in range(1000))
    big = esc("<tenants>" + chunk * (50 * 1024 * 1024 // len(chunk) + 1) + "</tenants>")
    assert len(big) > 50 * 1024 * 1024
    with pytest.raises(RpcError) as info:
        parse_xml(big.encode())
    assert info.value.tag == "too-big"
    assert dump(seeded) == before


def test_continue_on_error_applies_the_good_units(seeded: SqlDatastore) -> None:
    payload = esc(
        "<tenants><tenant><name>fresh</name></tenant>"
        '<tenant nc:operation="delete"><name>ghost</name></tenant></tenants>'
    )
    errors = _errors(
        lambda: seeded.edit_config(
            target=Datastore.RUNNING,
            config=config_of(payload),
            error_option=ErrorOption.CONTINUE_ON_ERROR,
        )
    )
    assert [e.tag for e in errors] == ["data-missing"]
    names = seeded.get_config(source=Datastore.RUNNING).xpath(
        "//e:tenant/e:name/text()", namespaces={"e": ESC_NS}
    )
    assert sorted(names) == ["fresh", "name1"]


def test_test_only_validates_without_applying(seeded: SqlDatastore) -> None:
    before = dump(seeded)
    seeded.edit_config(
        target=Datastore.RUNNING,
        config=config_of(esc("<tenants><tenant><name>probe</name></tenant></tenants>")),
        test_option=backend.TestOption.TEST_ONLY,
    )
    assert dump(seeded) == before
    with pytest.raises(RpcErrors):
        seeded.edit_config(
            target=Datastore.RUNNING,
            config=config_of(_variant("<vim_id>CSP-1</vim_id>", "<vim_id>CSP-9</vim_id>")),
            test_option=backend.TestOption.TEST_ONLY,
        )
