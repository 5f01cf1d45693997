"""Running operator scripts (rule actions, script collectors): a timeout, facts in, a typed result.

A script is a file of a directory the daemon's configuration names; a payload only names it.
It runs with a small fixed environment (``PATH``, ``LANG``) plus the facts given (``ESC_*``),
never the daemon's own environment, with stdin closed, its output captured in files (and
truncated), and is killed with its process group when the timeout passes. Whatever happens
— missing, not executable, exit code, timeout — comes back as a :class:`ScriptResult`;
nothing raises, so a broken script can never take the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

MAX_OUTPUT = 4096  # bytes of stdout/stderr kept for the log and the report
_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class ScriptOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # non-zero exit
    TIMEOUT = "timeout"
    MISSING = "missing"
    NOT_EXECUTABLE = "not-executable"
    ERROR = "error"  # could not be started for another reason


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptResult:
    name: str
    outcome: ScriptOutcome
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is ScriptOutcome.OK

    @property
    def message(self) -> str:
        """The sentence a person reads (rendered here only)."""
        match self.outcome:
            case ScriptOutcome.OK:
                return f"script {self.name} succeeded"
            case ScriptOutcome.FAILED:
                return f"script {self.name} failed with exit code {self.exit_code}"
            case ScriptOutcome.TIMEOUT:
                return f"script {self.name} killed after {self.seconds:.1f} s (timeout)"
            case ScriptOutcome.MISSING:
                return f"script {self.name} not found ({self.detail})"
            case ScriptOutcome.NOT_EXECUTABLE:
                return f"script {self.name} is not executable ({self.detail})"
            case _:
                return f"script {self.name} could not run: {self.detail}"


def known_rule_scripts(scripts_dir: Path | None) -> frozenset[str]:
    """The script names a rule may use: executable files of ``scripts_dir``."""
    if scripts_dir is None or not scripts_dir.is_dir():
        return frozenset()
    return frozenset(p.name for p in scripts_dir.iterdir() if p.is_file() and os.access(p, os.X_OK))


def resolve(scripts_dir: Path | None, name: str) -> tuple[Path | None, ScriptResult | None]:
    """The script's path inside ``scripts_dir``, or the result explaining why there is none."""
    if scripts_dir is None:
        return None, ScriptResult(
            name=name, outcome=ScriptOutcome.MISSING, detail="no [monitor] scripts_dir configured"
        )
    if "/" in name or name in ("", ".", ".."):
        return None, ScriptResult(
            name=name, outcome=ScriptOutcome.MISSING, detail="a script name is not a path"
        )
    path = scripts_dir / name
    if not path.is_file():
        return None, ScriptResult(name=name, outcome=ScriptOutcome.MISSING, detail=str(path))
    if not os.access(path, os.X_OK):
        return None, ScriptResult(name=name, outcome=ScriptOutcome.NOT_EXECUTABLE, detail=str(path))
    return path, None


def _text(data: bytes) -> str:
    return data[:MAX_OUTPUT].decode("utf-8", "replace")


async def run_script(
    path: Path,
    *,
    name: str | None = None,
    args: Sequence[str] = (),
    facts: Mapping[str, str] | None = None,
    time_limit: float = 30.0,
) -> ScriptResult:
    """Run ``path`` with ``args`` and the ``facts`` as environment, killed after ``time_limit``."""
    label = name or path.name
    env = {**_BASE_ENV, **(facts or {})}
    started = time.monotonic()
    # Output goes to files, not pipes: a child that escaped the process group and keeps
    # writing can never make us wait.
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        try:
            proc = await asyncio.create_subprocess_exec(
                str(path), *args, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out_file, stderr=err_file, start_new_session=True, cwd=str(path.parent),
            )  # fmt: skip
        except FileNotFoundError as exc:
            return ScriptResult(name=label, outcome=ScriptOutcome.MISSING, detail=str(exc))
        except PermissionError as exc:
            return ScriptResult(name=label, outcome=ScriptOutcome.NOT_EXECUTABLE, detail=str(exc))
        except OSError as exc:
            return ScriptResult(name=label, outcome=ScriptOutcome.ERROR, detail=str(exc))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), time_limit)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        stdout, stderr = _read(out_file), _read(err_file)
    code = proc.returncode
    if timed_out:
        outcome = ScriptOutcome.TIMEOUT
    else:
        outcome = ScriptOutcome.OK if code == 0 else ScriptOutcome.FAILED
    return ScriptResult(
        name=label, outcome=outcome, exit_code=code, stdout=stdout, stderr=stderr,
        seconds=time.monotonic() - started,
    )  # fmt: skip


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    return _text(file.read(MAX_OUTPUT))
