"""VM names: the ESC format, parsing back, and adopting VMs found on the VIMs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import esc_orch.reconcile
from esc_orch.reconcile import VmIdentity, adopt_identities, parse_vm_name, vm_name
from unit.reconcile.builders import uuid_factory

U1 = "46e607a8-b797-4056-96f3-42a90a63b555"
U2 = "6b0e7179-fd5e-487e-9570-e7ba98cce0ec"


def test_name_has_the_esc_format() -> None:
    ident = VmIdentity(deployment="dep", group="group", index=0, uuid=U1, vmid=U2)
    assert ident.name == f"dep_group_0_{U1}"
    assert ident.slot == ("group", 0)


def test_parse_from_the_right_allows_underscores_in_groups() -> None:
    name = vm_name(deployment="my_dep", group="g_1", index=12, uuid=U1)
    parsed = parse_vm_name(name, deployment="my_dep")
    assert parsed is not None and (parsed.group, parsed.index, parsed.uuid) == ("g_1", 12, U1)


@pytest.mark.parametrize(
    "name", ["other_g_0_" + U1, "dep_g_x_" + U1, "dep_g_0_notauuid", "dep__0_" + U1, "dep"]
)
def test_not_our_names(name: str) -> None:
    assert parse_vm_name(name, deployment="dep") is None


def test_invalid_identity_is_refused() -> None:
    with pytest.raises(ValueError):
        VmIdentity(deployment="d", group="g", index=-1, uuid=U1, vmid="x")
    with pytest.raises(ValueError):
        VmIdentity(deployment="d", group="g", index=0, uuid="nope", vmid="x")


def test_adopt_fills_free_slots_of_known_groups_only() -> None:
    known = VmIdentity(deployment="dep", group="g", index=0, uuid=U1, vmid=U2)
    names = [
        known.name,
        vm_name(deployment="dep", group="g", index=0, uuid=U2),  # slot taken: orphan
        vm_name(deployment="dep", group="g", index=1, uuid=U2),  # free slot: adopted
        vm_name(deployment="dep", group="other", index=0, uuid=U2),  # unknown group
    ]
    adopted = adopt_identities(
        deployment="dep", groups={"g"}, observed_names=names, known=[known], new_uuid=uuid_factory()
    )
    assert [(a.group, a.index, a.uuid) for a in adopted] == [("g", 1, U2)]
    assert adopted[0].vmid == "00000000-0000-4000-8000-000000000001"


def test_reconcile_imports_no_io() -> None:
    """The planner stays pure: no database, SSH, event loop, clock or randomness."""
    banned = {"sqlalchemy", "asyncssh", "asyncio", "aiohttp", "socket", "time", "random", "uuid"}
    package = Path(esc_orch.reconcile.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"
                assert not name.startswith(("esc_orch.store", "esc_orch.reactor")), path.name
