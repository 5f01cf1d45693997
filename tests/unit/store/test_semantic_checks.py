"""Issue #12: the elements real ESC payloads use, and what the configuration alone decides.

Each newly accepted element is accepted in its valid forms and refused for bad values
(enumerations, ranges, missing keys) with the right error-tag and error-path; each check
the configuration alone can make is made at edit-config, validate and commit time. After a
refusal the datastore is byte-for-byte unchanged (the SQL dump is compared).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.model.semantics import Vocabulary
from esc_orch.northbound import backend
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from payloads import ESC_NS, EXAMPLES, config_of, dump
from unit.northbound.test_esc_rpc_error_paths import fully_prefixed

DEPLOYMENT = (EXAMPLES / "deploy_csp_1.xml").read_text()
GROUP = (
    "/esc:esc_datamodel/esc:tenants/esc:tenant[esc:name='name1']/esc:deployments"
    "/esc:deployment[esc:name='dep']/esc:vm_group[esc:name='Group1']"
)
DEP = GROUP.rsplit("/", 1)[0]
FAKE_ENTRY = (
    "<vim_connector><id>LAB</id><type>FAKE</type><properties><property><name>cluster_name"
    "</name><value>c</value></property></properties></vim_connector>"
)
LOCAL_ENTRY = (
    "<vim_connector><id>CSP-1-local</id><type>CSP</type><properties><property><name>url</name>"
    "<value>http://127.0.0.1:8441</value></property></properties></vim_connector>"
)


def system_config(*entries: str) -> str:
    return (
        f'<esc_system_config xmlns="{ESC_NS}"><vim_connectors>{"".join(entries)}'
        "</vim_connectors></esc_system_config>"
    )


#: The seed's three CSP connectors, a FAKE one (LAB) and a CSP one without cluster_name.
ALL_CONNECTORS = (
    (EXAMPLES / "vim_connectors.xml")
    .read_text()
    .replace("</vim_connectors>", FAKE_ENTRY + LOCAL_ENTRY + "</vim_connectors>")
)


def variant(*changes: tuple[str, str]) -> str:
    text = DEPLOYMENT
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def on_lab(*changes: tuple[str, str]) -> str:
    return variant(
        ("<vim_id>CSP-1</vim_id>", "<vim_id>LAB</vim_id>"),
        ("<vim_project>CSP-1</vim_project>", "<vim_project>LAB</vim_project>"),
        *changes,
    )


END_GROUP = "          </vm_group>"
KPI_DATA = "<kpi_data>"
COLLECTOR = "<type>ICMPPing</type>"
IMAGE_EXT_RESIZE = "<name>disk-resize</name>\n                    <value>true</value>"
VOLUME = (
    "<volumes><volume><name>v1</name><volid>1</volid><size>2</size><bus>ide</bus>"
    "<type>lvm</type></volume></volumes>"
)


@pytest.fixture
def seeded(store: SqlDatastore) -> SqlDatastore:
    store.edit_config(
        target=Datastore.RUNNING,
        config=config_of(ALL_CONNECTORS),
    )
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml"))
    return store


def _errors(call: Callable[[], object]) -> list[RpcError]:
    with pytest.raises((RpcError, RpcErrors)) as info:
        call()
    exc = info.value
    return list(exc.errors) if isinstance(exc, RpcErrors) else [exc]


def _edit(store: SqlDatastore, *payloads: str) -> None:
    store.edit_config(target=Datastore.RUNNING, config=config_of(*payloads))


# -- accepted in their valid forms ------------------------------------------------------------

VALID: dict[str, str] = {
    "kpi_data/enabled": on_lab((KPI_DATA, f"{KPI_DATA}<enabled>false</enabled>")),
    "metric_collector properties": on_lab(
        (
            COLLECTOR,
            f"{COLLECTOR}<properties><property><name>count</name><value>3</value></property>"
            "<property><name>flag</name></property></properties>",
        )
    ),
    "volumes on a connector that supports them": on_lab(
        ("</interfaces>", "</interfaces>" + VOLUME)
    ),
    "volume with every leaf": on_lab(
        (
            "</interfaces>",
            "</interfaces><volumes><volume><name>boot</name><volid>0</volid><size>512</size>"
            "<sizeunit>MiB</sizeunit><bus>virtio</bus><type>ceph</type><bootable>true</bootable>"
            "<image>base.qcow2</image></volume></volumes>",
        )
    ),
    "deployment locators": on_lab(
        (END_GROUP, END_GROUP + "<locators><datacenter>dc1</datacenter></locators>")
    ),
    "policies": on_lab(
        (
            END_GROUP,
            END_GROUP + "<policies><placement><target_vm_group_ref>Group1</target_vm_group_ref>"
            "<type>anti_affinity</type><vm_group_ref>Group1</vm_group_ref></placement>"
            "<placement_group><name>pg</name><type>affinity</type><vm_group>Group1</vm_group>"
            "</placement_group></policies>",
        )
    ),
    "tenant extensions": variant(
        (
            "<name>name1</name>",
            "<name>name1</name><extensions><extension><name>quota</name><properties>"
            "<property><name>instances</name><value>10</value></property></properties>"
            "</extension></extensions>",
        )
    ),
    "image disk_bus": (
        f'<esc_datamodel xmlns="{ESC_NS}"><images><image><name>img</name>'
        "<src>http://127.0.0.1/img.qcow2</src><disk_bus>ide</disk_bus></image></images>"
        "</esc_datamodel>"
    ),
    "pool as large as max_active": variant(
        ("<max_active>1</max_active>", "<max_active>2</max_active>"),
        (
            "<ip_address>192.168.23.61</ip_address>\n              </static",
            "<ip_address>192.168.23.61</ip_address><ip_address>192.168.23.62</ip_address></static",
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_forms_are_accepted_and_carried(name: str, seeded: SqlDatastore) -> None:
    _edit(seeded, VALID[name])
    running = etree.tostring(seeded.get_config(source=Datastore.RUNNING)).decode()
    marker = {
        "kpi_data/enabled": "<enabled>false</enabled>",
        "metric_collector properties": "<name>count</name>",
        "volumes on a connector that supports them": "<volid>1</volid>",
        "volume with every leaf": "<bootable>true</bootable>",
        "deployment locators": "<datacenter>dc1</datacenter>",
        "policies": "<target_vm_group_ref>Group1</target_vm_group_ref>",
        "tenant extensions": "<name>quota</name>",
        "image disk_bus": "<disk_bus>ide</disk_bus>",
        "pool as large as max_active": "192.168.23.62",
    }[name]
    assert marker in running


# -- refused, with tag and path, nothing written ------------------------------------------------

IMAGE_PROP = (
    f"{GROUP}/esc:extensions/esc:extension[esc:name='image']/esc:properties"
    "/esc:property[esc:name='{}']/esc:value"
)

REFUSED: dict[str, tuple[str, str, str, str | None]] = {
    # name: (payload, error-tag, error-path, words the message must hold)
    "volume bus enumeration": (
        on_lab(("</interfaces>", "</interfaces>" + VOLUME.replace("<bus>ide", "<bus>floppy"))),
        "invalid-value",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v1']/esc:bus",
        None,
    ),
    "volume size range": (
        on_lab(("</interfaces>", "</interfaces>" + VOLUME.replace("<size>2", "<size>0"))),
        "invalid-value",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v1']/esc:size",
        None,
    ),
    "volume without its key": (
        on_lab(("</interfaces>", "</interfaces>" + VOLUME.replace("<name>v1</name>", ""))),
        "missing-element",
        f"{GROUP}/esc:volumes/esc:volume",
        None,
    ),
    "volume without volid": (
        on_lab(("</interfaces>", "</interfaces>" + VOLUME.replace("<volid>1</volid>", ""))),
        "data-missing",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v1']/esc:volid",
        None,
    ),
    "two volumes on one volid": (
        on_lab(
            (
                "</interfaces>",
                "</interfaces>"
                + VOLUME.replace("</volumes>", "")
                + "<volume><name>v2</name><volid>1</volid><size>1</size></volume></volumes>",
            )
        ),
        "operation-failed",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v2']",
        None,
    ),
    "volume sizeunit enumeration": (
        on_lab(
            (
                "</interfaces>",
                "</interfaces>"
                + VOLUME.replace("<size>2</size>", "<size>2</size><sizeunit>PB</sizeunit>"),
            )
        ),
        "invalid-value",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v1']/esc:sizeunit",
        None,
    ),
    "volume bootable not a boolean": (
        on_lab(
            (
                "</interfaces>",
                "</interfaces>" + VOLUME.replace("</type>", "</type><bootable>yes</bootable>"),
            )
        ),
        "invalid-value",
        f"{GROUP}/esc:volumes/esc:volume[esc:name='v1']/esc:bootable",
        None,
    ),
    "collector property without its key": (
        on_lab(
            (
                COLLECTOR,
                f"{COLLECTOR}<properties><property><value>3</value></property></properties>",
            )
        ),
        "missing-element",
        f"{GROUP}/esc:kpi_data/esc:kpi[esc:event_name='VM_ALIVE']/esc:metric_collector"
        "/esc:properties/esc:property",
        None,
    ),
    "empty collector type": (
        variant((COLLECTOR, "<type></type>")),
        "invalid-value",
        f"{GROUP}/esc:kpi_data/esc:kpi[esc:event_name='VM_ALIVE']/esc:metric_collector/esc:type",
        None,
    ),
    "empty datacenter": (
        on_lab((END_GROUP, END_GROUP + "<locators><datacenter></datacenter></locators>")),
        "invalid-value",
        f"{DEP}/esc:locators/esc:datacenter",
        None,
    ),
    "placement without its target": (
        on_lab(
            (
                END_GROUP,
                END_GROUP + "<policies><placement><type>affinity</type>"
                "<vm_group_ref>Group1</vm_group_ref></placement></policies>",
            )
        ),
        "missing-element",
        f"{DEP}/esc:policies/esc:placement",
        None,
    ),
    "placement_group without groups": (
        on_lab(
            (
                END_GROUP,
                END_GROUP + "<policies><placement_group><name>pg</name><type>affinity</type>"
                "</placement_group></policies>",
            )
        ),
        "operation-failed",
        f"{DEP}/esc:policies/esc:placement_group[esc:name='pg']/esc:vm_group",
        None,
    ),
    "tenant extension without its key": (
        variant(
            (
                "<name>name1</name>",
                "<name>name1</name><extensions><extension><properties><property><name>q"
                "</name></property></properties></extension></extensions>",
            )
        ),
        "missing-element",
        "/esc:esc_datamodel/esc:tenants/esc:tenant[esc:name='name1']/esc:extensions/esc:extension",
        None,
    ),
    "volumes on CSP": (
        variant(("</interfaces>", "</interfaces>" + VOLUME)),
        "operation-not-supported",
        f"{GROUP}/esc:volumes",
        "CSP VIM does not support",
    ),
    "placement on CSP": (
        variant(("</scaling>", "</scaling><placement><type>anti_affinity</type></placement>")),
        "operation-not-supported",
        f"{GROUP}/esc:placement",
        "CSP VIM does not support",
    ),
    "deployment locators on CSP": (
        variant((END_GROUP, END_GROUP + "<locators><datacenter>dc1</datacenter></locators>")),
        "operation-not-supported",
        f"{DEP}/esc:locators",
        "CSP VIM does not support",
    ),
    "policies on CSP": (
        variant(
            (
                END_GROUP,
                END_GROUP + "<policies><placement_group><name>pg</name><type>affinity</type>"
                "<vm_group>Group1</vm_group></placement_group></policies>",
            )
        ),
        "operation-not-supported",
        f"{DEP}/esc:policies",
        "CSP VIM does not support",
    ),
    "placement type enumeration": (
        on_lab(
            (
                END_GROUP,
                END_GROUP + "<policies><placement><target_vm_group_ref>Group1"
                "</target_vm_group_ref><type>nearby</type><vm_group_ref>Group1</vm_group_ref>"
                "</placement></policies>",
            )
        ),
        "invalid-value",
        f"{DEP}/esc:policies/esc:placement[esc:target_vm_group_ref='Group1']/esc:type",
        None,
    ),
    "placement naming an unknown group": (
        on_lab(
            (
                END_GROUP,
                END_GROUP + "<policies><placement><target_vm_group_ref>Group1"
                "</target_vm_group_ref><type>affinity</type><vm_group_ref>Nope</vm_group_ref>"
                "</placement></policies>",
            )
        ),
        "data-missing",
        f"{DEP}/esc:policies/esc:placement[esc:target_vm_group_ref='Group1']"
        "[esc:type='affinity']/esc:vm_group_ref[.='Nope']",
        None,
    ),
    "kpi_data/enabled not a boolean": (
        on_lab((KPI_DATA, f"{KPI_DATA}<enabled>sometimes</enabled>")),
        "invalid-value",
        f"{GROUP}/esc:kpi_data/esc:enabled",
        None,
    ),
    "image disk_bus enumeration": (
        f'<esc_datamodel xmlns="{ESC_NS}"><images><image><name>img</name>'
        "<src>http://127.0.0.1/img.qcow2</src><disk_bus>floppy</disk_bus></image></images>"
        "</esc_datamodel>",
        "invalid-value",
        "/esc:esc_datamodel/esc:images/esc:image[esc:name='img']/esc:disk_bus",
        None,
    ),
    "disk-resize >true (the seed's typo)": (
        variant((IMAGE_EXT_RESIZE, IMAGE_EXT_RESIZE.replace("true", ">true"))),
        "invalid-value",
        IMAGE_PROP.format("disk-resize"),
        "disk-resize must be true or false",
    ),
    "disk_storage_name unknown": (
        variant(("<value>gluster</value>", "<value>tape</value>")),
        "invalid-value",
        IMAGE_PROP.format("disk_storage_name"),
        "local or gluster",
    ),
    "gluster on a connector without cluster_name": (
        variant(
            ("<vim_id>CSP-1</vim_id>", "<vim_id>CSP-1-local</vim_id>"),
        ),
        "operation-failed",
        IMAGE_PROP.format("disk_storage_name"),
        "no cluster_name",
    ),
    "interface extension vlan out of range": (
        variant(
            (
                "<name>vlan</name>\n                        <value>1</value>",
                "<name>vlan</name>\n                        <value>5000</value>",
            )
        ),
        "invalid-value",
        f"{GROUP}/esc:extensions/esc:extension[esc:name='interfaces']/esc:containers"
        "/esc:container[esc:name='0']/esc:properties/esc:property[esc:name='vlan']/esc:value",
        "1 to 4094",
    ),
    "interfaces extension for a missing nicid": (
        variant(
            (
                "<name>1</name>\n                    <properties>",
                "<name>7</name>\n                    <properties>",
            )
        ),
        "invalid-value",
        f"{GROUP}/esc:extensions/esc:extension[esc:name='interfaces']/esc:containers"
        "/esc:container[esc:name='7']/esc:name",
        "names no interface",
    ),
    "serial_type unknown": (
        variant(("<value>console</value>", "<value>modem</value>")),
        "invalid-value",
        f"{GROUP}/esc:extensions/esc:extension[esc:name='serial_ports']/esc:containers"
        "/esc:container[esc:name='0']/esc:properties/esc:property[esc:name='serial_type']"
        "/esc:value",
        "console or telnet",
    ),
    "pool smaller than max_active": (
        variant(("<max_active>1</max_active>", "<max_active>2</max_active>")),
        "operation-failed",
        f"{GROUP}/esc:scaling/esc:static_ip_address_pool[esc:network='Eth0-2']",
        "max_active is 2",
    ),
    "unknown collector type": (
        variant((COLLECTOR, "<type>MEMORY</type>")),
        "invalid-value",
        f"{GROUP}/esc:kpi_data/esc:kpi[esc:event_name='VM_ALIVE']/esc:metric_collector/esc:type",
        "no collector of type 'MEMORY'",
    ),
    "unknown rule script": (
        variant(("TRUE servicebooted.sh", "TRUE cleanup.sh")),
        "invalid-value",
        f"{GROUP}/esc:rules/esc:admin_rules/esc:rule[esc:event_name='VM_ALIVE']"
        "/esc:action[.='TRUE cleanup.sh']",
        "registered script",
    ),
    "no locator and several connectors without a default": (
        variant(
            ("<vim_id>CSP-1</vim_id>", ""),
            ("<vim_project>CSP-1</vim_project>", ""),
            ("<name>dep</name>", "<name>dep2</name>"),
        ),
        "data-missing",
        f"{GROUP.replace(chr(39) + 'dep' + chr(39), chr(39) + 'dep2' + chr(39))}/esc:locator",
        "no default VIM connector",
    ),
}


def _assert_refused(errors: list[RpcError], tag: str, path: str, words: str | None) -> None:
    assert errors[0].tag == tag, errors
    assert errors[0].path == path, errors[0].path
    assert fully_prefixed(path), path
    if words:
        assert words in errors[0].message, errors[0].message


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_edit_config_refuses_and_changes_nothing(name: str, seeded: SqlDatastore) -> None:
    payload, tag, path, words = REFUSED[name]
    before = dump(seeded)
    _assert_refused(_errors(lambda: _edit(seeded, payload)), tag, path, words)
    assert dump(seeded) == before


SEMANTIC = sorted(
    n for n, case in REFUSED.items() if case[1] in ("operation-not-supported",) or case[3]
)


@pytest.mark.parametrize("name", SEMANTIC)
def test_validate_and_commit_refuse_the_same(name: str, seeded: SqlDatastore) -> None:
    payload, tag, path, words = REFUSED[name]
    before = dump(seeded)
    inline = config_of(ALL_CONNECTORS, payload)
    _assert_refused(_errors(lambda: seeded.validate(source=inline)), tag, path, words)
    # The candidate takes the edit unvalidated (test-option set); commit refuses it.

    seeded.edit_config(
        target=Datastore.CANDIDATE, config=config_of(payload), test_option=backend.TestOption.SET
    )
    _assert_refused(_errors(lambda: seeded.validate(source=Datastore.CANDIDATE)), tag, path, words)
    _assert_refused(_errors(seeded.commit), tag, path, words)
    seeded.discard_changes()
    assert dump(seeded) == before


def test_candidate_edit_is_checked_too(seeded: SqlDatastore) -> None:
    payload, tag, path, words = REFUSED["disk-resize >true (the seed's typo)"]
    before = dump(seeded)
    errors = _errors(
        lambda: seeded.edit_config(target=Datastore.CANDIDATE, config=config_of(payload))
    )
    _assert_refused(errors, tag, path, words)
    assert dump(seeded) == before


# -- the daemon's vocabulary --------------------------------------------------------------------


def test_registered_collector_types_and_scripts_are_accepted(seeded: SqlDatastore) -> None:
    payload = variant(
        (COLLECTOR, "<type>MEMORY</type>"), ("TRUE servicebooted.sh", "TRUE cleanup.sh")
    )
    seeded.set_vocabulary(
        Vocabulary(
            collector_types=frozenset({"ICMPPing", "MEMORY"}),
            rule_action=lambda what: what == "cleanup.sh",
        )
    )
    _edit(seeded, payload)
    running = etree.tostring(seeded.get_config(source=Datastore.RUNNING)).decode()
    assert "<type>MEMORY</type>" in running and "TRUE cleanup.sh" in running


# -- the default VIM connector --------------------------------------------------------------------

UNPLACED = variant(
    ("<vim_id>CSP-1</vim_id>", ""),
    ("<vim_project>CSP-1</vim_project>", ""),
    ("<name>dep</name>", "<name>dep2</name>"),
)


def _mark_default(cid: str, value: str = "true") -> str:
    return (
        f'<esc_system_config xmlns="{ESC_NS}"><vim_connectors><vim_connector><id>{cid}</id>'
        f"<type>CSP</type><properties><property><name>default</name><value>{value}</value>"
        "</property></properties></vim_connector></vim_connectors></esc_system_config>"
    )


def test_a_single_connector_is_the_default(store: SqlDatastore) -> None:
    _edit(store, system_config(FAKE_ENTRY))
    _edit(store, UNPLACED)
    assert "<vim_id>" not in etree.tostring(store.get_config(source=Datastore.RUNNING)).decode()


def test_with_several_connectors_the_marked_one_is_the_default(seeded: SqlDatastore) -> None:
    seeded.edit_config(
        target=Datastore.RUNNING,
        config=config_of(
            _mark_default("CSP-2"), UNPLACED.replace("<name>dep</name>", "<name>d2</name>")
        ),
    )


def test_bad_default_values_and_two_defaults_are_refused(seeded: SqlDatastore) -> None:
    before = dump(seeded)
    connector = (
        "/esc:esc_system_config/esc:vim_connectors/esc:vim_connector[esc:id='CSP-2']"
        "/esc:properties/esc:property[esc:name='default']"
    )
    errors = _errors(lambda: _edit(seeded, _mark_default("CSP-2", "maybe")))
    _assert_refused(errors, "invalid-value", f"{connector}/esc:value", "true or false")
    assert dump(seeded) == before
    _edit(seeded, _mark_default("CSP-1"))
    before = dump(seeded)
    errors = _errors(lambda: _edit(seeded, _mark_default("CSP-2")))
    _assert_refused(errors, "operation-failed", connector, "only one VIM connector")
    assert dump(seeded) == before
