"""Private network namespaces for tests and benches that ping anything but 127.0.0.0/8.

The network rule of this repository: a packet to a non-loopback address is sent only from
inside a namespace the test made itself (``unshare --net``: no route out, only ``lo``). A
machine that cannot make one skips such tests with the reason; under ``CI=true`` as root they
must run, so a missing namespace is a failure there, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

#: Set in the environment of the process started inside the namespace (never read by the daemon).
INSIDE_MARKER = "ESC_ORCH_TEST_NETNS"


def netns_unavailable() -> str | None:
    """Why this machine cannot make a private network namespace (``None``: it can)."""
    if os.geteuid() != 0:
        return "needs root to create a private network namespace"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command"
    probe = subprocess.run(
        ["unshare", "--net", "true"], check=False, capture_output=True, text=True, timeout=10
    )
    if probe.returncode != 0:
        return f"unshare --net failed: {probe.stderr.strip() or probe.returncode}"
    return None


def require_netns() -> None:
    """Skip with the reason when no namespace can be made; fail instead under CI as root."""
    reason = netns_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"CI as root must run the namespace tests: {reason}")
    pytest.skip(reason)


def inside() -> bool:
    return os.environ.get(INSIDE_MARKER) == "1"
