"""Deleting a VIM connector that a deployment uses is refused for that reason (defect 9).

It used to be refused with a leafref error about the deployment's *flavor*: the deployment
was validated without the units it references.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_orch.model.errors import ErrorTag, RpcErrors
from esc_orch.northbound.backend import Datastore
from esc_orch.store.datastore import SqlDatastore
from payloads import config_of

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
DELETE = (
    '<esc_system_config xmlns="http://www.cisco.com/esc/esc" '
    'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><vim_connectors>'
    '<vim_connector nc:operation="delete"><id>CSP-1</id></vim_connector>'
    "</vim_connectors></esc_system_config>"
)


@pytest.mark.parametrize("target", [Datastore.RUNNING, Datastore.CANDIDATE])
def test_deleting_an_in_use_connector_names_the_locator(tmp_path: Path, target: Datastore) -> None:
    store = SqlDatastore.open(data_dir=tmp_path)
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "vim_connectors.xml"))
    store.edit_config(target=Datastore.RUNNING, config=config_of(EXAMPLES / "deploy_csp_1.xml"))
    with pytest.raises(RpcErrors) as info:
        store.edit_config(target=target, config=config_of(DELETE))
        store.commit()
    (error,) = info.value.errors
    assert error.tag is ErrorTag.DATA_MISSING
    assert error.path is not None
    assert error.path.endswith("/esc:locator/esc:vim_id")
    assert "CSP-1" in error.message
    assert "flavor" not in error.message.lower()
    assert len(store.running_units("vim_connector")) == 3
    store.close()
