"""The import-layer contracts of pyproject.toml hold (import-linter), and they have teeth.

The second test copies the package, adds one deliberate wrong-way import, and checks that the
contracts then fail, naming the contract broken: a layers contract that cannot fail would
prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _lint(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command as c; raise SystemExit(c())",
            "--no-cache",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_contracts_are_kept() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 0 broken" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("model/lifecycle.py", "import esc_orch.daemon.cli", "Layers:"),
        ("reconcile/planner.py", "import esc_orch.reactor.engine", "Layers:"),
        ("reconcile/desired.py", "import asyncio", "The planner is pure"),
        ("store/codec.py", "import esc_orch.reactor.engine", "The store and the connectors sit"),
        ("northbound/framing.py", "import asyncio", "sans-I/O"),
        ("reactor/events.py", "import esc_orch.northbound.core", "Siblings are independent"),
    ],
    ids=[
        "model->daemon",
        "reconcile->reactor",
        "planner->asyncio",
        "store->reactor",
        "framing->asyncio",
        "reactor->northbound",
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(REPO / "src", tmp_path / "src", symlinks=True)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "esc_orch" / module
    text = target.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    target.write_text(f"{head}{sep}\n{line}  # deliberate\n{rest}")
    result = _lint(tmp_path, pythonpath=tmp_path / "src")
    assert result.returncode != 0, result.stdout[-3000:]
    broken = [ln for ln in result.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert any(contract in ln for ln in broken), result.stdout[-3000:]
