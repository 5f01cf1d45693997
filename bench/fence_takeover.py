"""Bench: how long a fenced takeover of a hung host's VM takes on the emulator, step by step.

A three-part figure for scenario 2 with a fence agent, without the orchestrator: (1) fence a
partitioned CSP-1 through its power controller (status, power off, read back), (2) start the VM
on CSP-2 from the shared disk the dead host's lock no longer holds, (3) power CSP-1 back on.
Prints the median and max of each over N rounds, and the bytes/s of a throttled disk copy seen
through ``VmState.disk_copy``. The agent is built as the daemon builds it: from CSP-1's
``vim_connector`` with its ``eo:fence_agent`` (``daemon/moves.py``).

Run: .venv/bin/python bench/fence_takeover.py [--rounds 10]   (bounded: about 2 s a round)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from esc_orch.daemon.moves import fence_config
from esc_orch.fence import FenceAgent, create_fence_agent
from esc_orch.model.convert import unit_model
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.testing.emulator import EmulatorCluster
from esc_orch.testing.vim_contract import sample_spec
from esc_orch.vim import PowerState, Storage, VimDiskInUse
from esc_orch.vim.csp import CspConnector

FAST = {"retries": "1", "timeout": "2", "poll_interval": "0.02"}
ESC_NS = "http://www.cisco.com/esc/esc"


def _configured_agent(cluster: EmulatorCluster, name: str) -> FenceAgent:
    """The fence agent the daemon would build from ``name``'s vim_connector configuration."""
    xml = (
        f'<vim_connector xmlns="{ESC_NS}"><id>{name}</id><type>CSP</type>'
        f"{cluster.fence_agent_xml(name, timeout=10)}</vim_connector>"
    )
    found = fence_config(unit_model("vim_connector", parse_xml(xml.encode())))
    assert found is not None
    return create_fence_agent(found[0])


async def _round(cluster: EmulatorCluster, n: int) -> tuple[float, float, float]:
    one = CspConnector(config=cluster.config("CSP-1", **FAST))
    two = CspConnector(config=cluster.config("CSP-2", **FAST))
    agent = _configured_agent(cluster, "CSP-1")
    spec = sample_spec(f"bench-{n}", storage=Storage.GLUSTER)
    try:
        await one.ensure_vm(spec=spec)
        cluster.pause("CSP-1")
        try:
            await two.ensure_vm(spec=spec)
            raise AssertionError("a second copy started while CSP-1 held the disk")
        except VimDiskInUse:
            pass
        t0 = time.perf_counter()
        await agent.fence(host="CSP-1")
        t1 = time.perf_counter()
        state = await two.ensure_vm(spec=spec)
        t2 = time.perf_counter()
        assert state.power is PowerState.RUNNING
        cluster.start("CSP-1")
        t3 = time.perf_counter()
        await one.delete_vm(name=spec.name, keep_disk=True)  # the stale copy
        await two.delete_vm(name=spec.name)
        return t1 - t0, t2 - t1, t3 - t2
    finally:
        await agent.close()
        await one.close()
        await two.close()


async def _copy_rate(root: Path) -> float:
    with EmulatorCluster(root, hosts=1, extra_args=["--copy-rate-kbps", "256"]) as cluster:
        c = CspConnector(config=cluster.config("CSP-1", **FAST))
        try:
            await c.ensure_vm(spec=sample_spec("bench-copy"))
            await c.power_off(name="bench-copy")
            seen: list[tuple[float, int]] = []
            task = asyncio.ensure_future(
                c.copy_disk(
                    name="bench-copy", from_storage=Storage.LOCAL, to_storage=Storage.GLUSTER
                )
            )
            while not task.done():
                progress = (await c.get_vm(name="bench-copy")).disk_copy
                if progress is not None:
                    seen.append((time.perf_counter(), progress.bytes_done))
                await asyncio.sleep(0.05)
            await task
        finally:
            await c.close()
    (ta, ba), (tb, bb) = seen[0], seen[-1]
    print(f"disk copy progress samples seen: {len(seen)}")
    return (bb - ba) / (tb - ta) if tb > ta else 0.0


def _show(label: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(f"{label:<40} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with EmulatorCluster(Path(tmp) / "c", hosts=2) as cluster:
            results = [await _round(cluster, n) for n in range(rounds)]
        _show("fence CSP-1 (status, off, read back)", [r[0] for r in results])
        _show("start on CSP-2 from the shared disk", [r[1] for r in results])
        _show("power CSP-1 back on (until it listens)", [r[2] for r in results])
        rate = await _copy_rate(Path(tmp) / "copy")
        print(f"throttled copy seen at {rate / 1024:.0f} KiB/s of data (limit 256 KiB/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
