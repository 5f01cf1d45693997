"""Nothing the environment says can make the package import code.

Modules are loaded only by ``import`` statements and by the connector entry points
(``vim/registry.py``, from installed package metadata). The only environment variables read
by the daemon's code are ``NOTIFY_SOCKET`` (systemd) and ``ESC_ORCH_FAILPOINTS``, which only
arms named points.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "esc_orch"
DYNAMIC = {"import_module", "__import__", "load_entry_point", "spec_from_file_location"}


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                names.add(func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def test_no_module_imports_code_by_name() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if _calls(ast.parse(path.read_text())) & DYNAMIC
    ]
    assert offenders == []


def test_the_daemon_reads_only_known_environment_variables() -> None:
    read: set[str] = set()
    for path in [*sorted((SRC / "daemon").rglob("*.py")), SRC / "failpoints.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and "environ" in ast.unparse(node.func.value)
                and node.args
            ):
                read.add(ast.unparse(node.args[0]))
    assert read == {"'NOTIFY_SOCKET'", "ENV"}, read
