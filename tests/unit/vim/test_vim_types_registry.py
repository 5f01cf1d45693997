"""Value types validate themselves; the registry finds connectors through entry points."""

from __future__ import annotations

import pytest

from esc_orch.vim import (
    Connector,
    ConnectorConfig,
    Credentials,
    Day0File,
    NicSpec,
    UnknownConnectorType,
    VmSpec,
    connector_class,
    create_connector,
    known_types,
)
from esc_orch.vim.csp import CspConnector
from esc_orch.vim.fake import FakeConnector


def test_spec_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="vcpus"):
        VmSpec(name="a", vcpus=0, memory_mb=1, disk_mb=1, image="i")
    with pytest.raises(ValueError, match="duplicate nicid"):
        VmSpec(
            name="a",
            vcpus=1,
            memory_mb=1,
            disk_mb=1,
            image="i",
            interfaces=(NicSpec(nicid=0, network="n"), NicSpec(nicid=0, network="m")),
        )
    with pytest.raises(ValueError, match="exactly one"):
        Day0File(dst="/x")
    with pytest.raises(ValueError, match="name"):
        VmSpec(name="a/b", vcpus=1, memory_mb=1, disk_mb=1, image="i")


def test_credentials_never_in_repr() -> None:
    config = ConnectorConfig(
        id="c", type="CSP", credentials=Credentials(user="admin", password="hunter2")
    )
    assert "hunter2" not in repr(config)


def test_registry_finds_builtin_types_case_insensitively() -> None:
    assert {"CSP", "FAKE"} <= set(known_types())
    assert connector_class("csp") is CspConnector
    assert connector_class(" Fake ") is FakeConnector


def test_registry_unknown_type_lists_known_ones() -> None:
    with pytest.raises(UnknownConnectorType, match=r"'OPENSTACK'.*CSP.*FAKE"):
        connector_class("OPENSTACK")


def test_create_connector_builds_from_config() -> None:
    connector = create_connector(ConnectorConfig(id="f1", type="FAKE"))
    assert isinstance(connector, FakeConnector)
    assert isinstance(connector, Connector)
    assert connector.config.id == "f1"
