"""The guest network refuses any namespace that could route a packet off the machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from esc_orch.csp_sim.guestnet import interface_flags, isolation_problems


def _tree(
    tmp_path: Path, *, same_ns: bool, route: bool, up: list[str]
) -> tuple[Path, Callable[[], dict[str, int]]]:
    proc = tmp_path / "proc"
    (proc / "self/ns").mkdir(parents=True)
    (proc / "1/ns").mkdir(parents=True)
    (proc / "net").mkdir()
    (proc / "self/ns/net").write_text("")
    if same_ns:
        os.link(proc / "self/ns/net", proc / "1/ns/net")
    else:
        (proc / "1/ns/net").write_text("")
    header = "Iface\tDestination\tGateway\tFlags\n"
    (proc / "net/route").write_text(header + ("eth0\t00000000\t010200C0\t0003\n" if route else ""))
    (proc / "net/ipv6_route").write_text("00000000000000000000000000000001 80 0 0 0 0 0 0 0 lo\n")
    flags = {dev: 0x9 if dev in up or dev == "lo" else 0x1002 for dev in ["lo", "eth0", *up]}
    return proc, lambda: flags


def test_sealed_namespace_is_accepted(tmp_path: Path) -> None:
    assert isolation_problems(*_tree(tmp_path, same_ns=False, route=False, up=[])) == []


def test_each_way_out_is_reported(tmp_path: Path) -> None:
    problems = isolation_problems(*_tree(tmp_path, same_ns=True, route=True, up=["eth0"]))
    text = " ".join(problems)
    assert "PID 1" in text and "IPv4 routes" in text and "eth0 is up" in text


def test_this_test_process_namespace_is_refused_unless_sealed() -> None:
    # Whatever namespace the suite runs in, it is not one this test sealed: if it had a way out
    # the check must say so; a sealed one (no routes, nothing up) is the only clean answer.
    problems = isolation_problems()
    routes = Path("/proc/net/route").read_text().splitlines()[1:]
    if any(line.strip() for line in routes):
        assert problems


def test_interface_flags_reads_this_namespace() -> None:
    flags = interface_flags()
    assert "lo" in flags
