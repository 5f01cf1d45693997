"""The atheris fuzzer for a fixed short time (20 s; ``ESC_ORCH_FUZZ_SECONDS`` to change).

Locally, run ``tests/reliability/fuzz.py --seconds N`` for longer. A crash makes libFuzzer
exit non-zero and leaves the input as ``crash-*`` in the run directory, shown here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbsupport.orchd import require_tool

FUZZ = Path(__file__).with_name("fuzz.py")


@pytest.mark.functional
def test_fuzz_framing_session_parser_and_filters(tmp_path: Path) -> None:
    require_tool("atheris" if importlib.util.find_spec("atheris") else None, name="atheris")
    seconds = int(os.environ.get("ESC_ORCH_FUZZ_SECONDS", "20"))
    done = subprocess.run(
        [sys.executable, str(FUZZ), "--seconds", str(seconds), "--corpus", str(tmp_path / "c")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert done.returncode == 0 and not crashes, (crashes, done.stderr[-4000:])
    assert "Done" in done.stderr
    runs = done.stderr.rsplit("Done ", 1)[1].split()[0]
    print(f"\nfuzzed {runs} inputs in {seconds} s")
