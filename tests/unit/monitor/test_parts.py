"""The small parts: ICMP bytes, target checks, scripts, metric definitions, the VIM's view."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import time
from pathlib import Path

import pytest

from esc_orch.monitor.collectors.protocol import CollectorContext
from esc_orch.monitor.collectors.registry import (
    UnknownCollectorType,
    check_collector_type,
    collector_kind,
    create_collector,
    known_collector_types,
)
from esc_orch.monitor.collectors.vimview import VimViewSource
from esc_orch.monitor.definitions import DefinitionError, load_definitions
from esc_orch.monitor.icmp_wire import MAGIC, checksum, echo_request, parse_reply
from esc_orch.monitor.rules import check_actions
from esc_orch.monitor.scripts import ScriptOutcome, known_rule_scripts, resolve, run_script
from esc_orch.monitor.targets import AllowedNetworks, check_target
from esc_orch.monitor.types import KpiSpec, MetricKind, VimView, VmWatch
from esc_orch.vim.errors import PermanentVimError, VimAuthError
from esc_orch.vim.types import PowerState, Storage, VmState


def test_echo_request_checksum_verifies() -> None:
    packet = echo_request(ident=0x1234, seq=7)
    assert checksum(packet) == 0
    assert packet[:2] == b"\x08\x00" and struct.unpack("!HH", packet[4:8]) == (0x1234, 7)


def test_parse_reply_with_and_without_ip_header() -> None:
    icmp = bytearray(echo_request(ident=5, seq=9))
    icmp[0] = 0  # echo reply
    ip = bytes([0x45]) + bytes(19)
    for data, with_ip in ((bytes(icmp), False), (ip + bytes(icmp), True)):
        reply = parse_reply(data, with_ip_header=with_ip)
        assert reply is not None and (reply.ident, reply.seq, reply.payload) == (5, 9, MAGIC)
    assert parse_reply(echo_request(ident=5, seq=9), with_ip_header=False) is None  # a request
    assert parse_reply(b"\x00\x00", with_ip_header=False) is None
    assert parse_reply(b"\x60" + bytes(40), with_ip_header=True) is None  # not IPv4


@pytest.mark.parametrize(
    ("address", "ok"),
    [("127.0.0.1", True), ("127.255.1.2", True), ("192.168.23.62", False), ("::1", False),
     ("nonsense", False)],
)  # fmt: skip
def test_default_allowed_networks(address: str, ok: bool) -> None:
    assert (check_target(address, AllowedNetworks.default()) is None) is ok


def test_allowed_networks_parse_refuses_host_bits() -> None:
    with pytest.raises(ValueError, match="not a CIDR prefix"):
        AllowedNetworks.parse(["192.168.23.1/24"])


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


async def test_scripts_outcomes(tmp_path: Path) -> None:
    ok = await run_script(_script(tmp_path / "ok.sh", 'echo "$ESC_X"; echo err >&2\n'),
                          facts={"ESC_X": "hello"})  # fmt: skip
    assert (ok.outcome, ok.stdout, ok.stderr) == (ScriptOutcome.OK, "hello\n", "err\n")
    bad = await run_script(_script(tmp_path / "bad.sh", "exit 3\n"))
    assert (bad.outcome, bad.exit_code) == (ScriptOutcome.FAILED, 3)
    assert bad.message == "script bad.sh failed with exit code 3"
    started = time.monotonic()
    slow = await run_script(_script(tmp_path / "slow.sh", "sleep 30 & sleep 30\n"), time_limit=0.3)
    assert slow.outcome is ScriptOutcome.TIMEOUT and time.monotonic() - started < 5
    env = await run_script(_script(tmp_path / "env.sh", "env\n"))
    names = {line.split("=", 1)[0] for line in env.stdout.splitlines()}
    assert names <= {"PATH", "LANG", "PWD", "SHLVL", "_"}  # not the daemon's environment


def test_resolve_and_known_scripts(tmp_path: Path) -> None:
    _script(tmp_path / "a.sh", "true\n")
    _script(tmp_path / "plain.sh", "true\n", mode=0o644)
    assert known_rule_scripts(tmp_path) == frozenset({"a.sh"})
    assert known_rule_scripts(None) == frozenset()
    assert resolve(tmp_path, "a.sh")[0] == tmp_path / "a.sh"
    assert resolve(tmp_path, "plain.sh")[1].outcome is ScriptOutcome.NOT_EXECUTABLE  # type: ignore[union-attr]
    assert resolve(tmp_path, "nope.sh")[1].outcome is ScriptOutcome.MISSING  # type: ignore[union-attr]
    assert resolve(tmp_path, "../a.sh")[1].outcome is ScriptOutcome.MISSING  # type: ignore[union-attr]
    assert resolve(None, "a.sh")[1].detail == "no [monitor] scripts_dir configured"  # type: ignore[union-attr]


def test_check_actions_with_known_scripts() -> None:
    problems = check_actions(
        ["ALWAYS log", "TRUE a.sh", "TRUE b.sh", "NEVER log"], known_scripts=frozenset({"a.sh"})
    )
    assert [p.text for p in problems] == ["TRUE b.sh", "NEVER log"]


def test_metric_definitions(tmp_path: Path) -> None:
    _script(tmp_path / "load.sh", "echo 42\n")
    (tmp_path / "load.toml").write_text(
        'name = "CPU_LOAD"\nkind = "MONITOR_THRESHOLD"\nscript = "load.sh"\n'
        "[properties]\nport = 22\n"
    )
    defs = load_definitions(tmp_path, reserved=frozenset({"ICMPPing"}))
    assert defs["CPU_LOAD"].kind is MetricKind.THRESHOLD
    assert defs["CPU_LOAD"].properties == {"port": "22"}
    assert known_collector_types(defs) == frozenset({"ICMPPing", "CPU_LOAD"})
    assert collector_kind("CPU_LOAD", defs) is MetricKind.THRESHOLD
    assert collector_kind("ICMPPing") is MetricKind.THRESHOLD
    assert (
        create_collector("CPU_LOAD", context=CollectorContext(), definitions=defs).type_name
        == "CPU_LOAD"
    )
    with pytest.raises(UnknownCollectorType, match="known types: CPU_LOAD, ICMPPing"):
        create_collector("SNMP", context=CollectorContext(), definitions=defs)
    assert check_collector_type("ICMPPing", known_collector_types()) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "ICMPPing"\nkind = "threshold"\nscript = "x.sh"\n', "built-in"),
        ('name = "A B"\nkind = "threshold"\nscript = "x.sh"\n', "one word"),
        ('name = "A"\nkind = "gauge"\nscript = "x.sh"\n', "kind must be"),
        ('name = "A"\nkind = "threshold"\nscript = "missing.sh"\n', "does not exist"),
        ('name = "A"\nkind = "threshold"\nscript = "x.sh"\ntimeout = -1\n', "timeout"),
        ('name = "A"\nkind = "threshold"\nscript = "x.sh"\ncolour = 1\n', "unknown keys"),
    ],
)
def test_bad_metric_definitions(tmp_path: Path, text: str, needle: str) -> None:
    _script(tmp_path / "x.sh", "true\n")
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(DefinitionError, match=needle):
        load_definitions(tmp_path, reserved=frozenset({"ICMPPing"}))


def _vm(name: str, power: PowerState) -> VmState:
    return VmState(name=name, power=power, host="h", storage=Storage.LOCAL, vim_id="1", vcpus=1,
                   memory_mb=1, disk_mb=1, image="i")  # fmt: skip


class Listing:
    def __init__(self, result: tuple[VmState, ...] | Exception) -> None:
        self.result = result

    async def list_vms(self) -> tuple[VmState, ...]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _w(name: str, connector: str) -> VmWatch:
    kpi = KpiSpec(event_name="VM_ALIVE", collector_type="ICMPPing", kind=MetricKind.THRESHOLD)
    return VmWatch(vm_name=name, tenant="t", deployment="d", group="g", connector_id=connector,
                   kpis=(kpi,))  # fmt: skip


async def test_the_vim_view() -> None:
    source = VimViewSource(
        observers={
            "A": Listing((_vm("a1", PowerState.RUNNING), _vm("a2", PowerState.STOPPED),
                          _vm("a3", PowerState.ERROR), _vm("a4", PowerState.UNKNOWN))),
            "B": Listing(VimAuthError("no")),
            "C": Listing(PermanentVimError("bad request")),
        }
    )  # fmt: skip
    watches = [_w(n, "A") for n in ("a1", "a2", "a3", "a4", "a5")]
    watches += [_w("b1", "B"), _w("c1", "C"), _w("d1", "D")]
    assert await source.observe(watches) == {
        "a1": VimView.RUNNING, "a2": VimView.STOPPED, "a3": VimView.ERROR, "a5": VimView.ABSENT,
    }  # fmt: skip


async def test_a_hung_vim_is_unreachable_after_the_check_timeout() -> None:
    class Hung:
        async def list_vms(self) -> tuple[VmState, ...]:
            import asyncio  # noqa: PLC0415

            await asyncio.sleep(30)
            return ()

    source = VimViewSource(observers={"A": Hung()}, check_timeout=0.05)
    assert await source.observe([_w("a1", "A")]) == {"a1": VimView.HOST_UNREACHABLE}


async def test_a_timed_out_script_whose_child_left_the_group_does_not_hang(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    body = f"setsid sleep 20 &\necho $! > {pid_file}\nsleep 20\n"
    try:
        result = await run_script(_script(tmp_path / "d.sh", body), time_limit=0.3)
        assert result.outcome is ScriptOutcome.TIMEOUT
        assert time.monotonic() - started < 5
    finally:
        if pid_file.exists():  # the escaped child is ours to end
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
