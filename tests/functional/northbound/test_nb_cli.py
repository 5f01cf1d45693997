"""esc_nc_cli against the real in-process server, as a user would run it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_orch.cli.main import main
from nbsupport.memory_backend import MemoryBackend
from nbsupport.server import PASSWORD, USER, ServerThread, prepare_data_dir

pytestmark = pytest.mark.functional

ESC = "http://www.cisco.com/esc/esc"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data_dir = prepare_data_dir(tmp_path_factory.mktemp("cli-data"))
    srv = ServerThread(data_dir=data_dir, backend=MemoryBackend()).start()
    try:
        yield srv
    finally:
        srv.stop()


def _cli(server: ServerThread, *args: str) -> list[str]:
    return ["--port", str(server.port), "--user", USER, "--password", PASSWORD, *args]


def test_create_tenant_then_get_config(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(server, "create-tenant", "cli-T")) == 0
    assert "<ok/>" in capsys.readouterr().out
    assert main(_cli(server, "get-config", "esc_datamodel/tenants/tenant[name='cli-T']")) == 0
    out = capsys.readouterr().out
    assert "<name>cli-T</name>" in out
    assert "\n  " in out  # pretty-printed


def test_rpc_error_is_printed_readably_with_exit_1(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(server, "create-tenant", "dup")) == 0
    assert main(_cli(server, "create-tenant", "dup")) == 1
    err = capsys.readouterr().err
    assert "rpc-error: data-exists" in err
    assert "message:" in err


def test_edit_config_file_and_delete(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "dep.xml"
    payload.write_text(
        f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>F</name><deployments>'
        "<deployment><name>D</name></deployment></deployments></tenant></tenants></esc_datamodel>"
    )
    assert main(_cli(server, "edit-config", str(payload))) == 0
    assert main(_cli(server, "delete-dep", "F", "D")) == 0
    assert main(_cli(server, "delete-tenant", "F")) == 0
    capsys.readouterr()
    assert main(_cli(server, "get", "/esc_datamodel/tenants/tenant[name='F']")) == 0
    assert "<name>F</name>" not in capsys.readouterr().out


def test_esc_actions_report_the_missing_engine(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(server, "vm-action", "STOP", "vm1")) == 1
    assert "operation-not-supported" in capsys.readouterr().err
    assert main(_cli(server, "service-action", "START", "T", "D")) == 1
    assert main(_cli(server, "recovery-vm-action", "DO", "vm1")) == 1


def test_bad_login_exits_3(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--port", str(server.port), "--user", USER, "--password", "nope", "get"]
    assert main(args) == 3
    assert "authentication failed" in capsys.readouterr().err


def test_console_script_with_env_credentials(server: ServerThread) -> None:
    script = Path(sys.executable).with_name("esc_nc_cli")
    result = subprocess.run(
        [str(script), "--port", str(server.port), "get-config"],
        env={"ESC_NC_USER": USER, "ESC_NC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "<data" in result.stdout


def test_password_is_prompted_for_on_a_terminal(server: ServerThread) -> None:
    """No --password and no $ESC_NC_PASSWORD: asked on the terminal, not echoed, then used."""
    script = Path(sys.executable).with_name("esc_nc_cli")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pty
        os.execve(
            str(script),
            [str(script), "--port", str(server.port), "--user", USER, "get-config"],
            {"PATH": "/usr/bin:/bin"},
        )
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the pty: it has exited
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"password of admin@127.0.0.1" in seen:
                os.write(fd, PASSWORD.encode() + b"\n")
                answered = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert answered, seen
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"<data" in seen
    assert PASSWORD.encode() not in seen  # not echoed


def test_without_a_terminal_a_missing_password_is_a_clear_error(server: ServerThread) -> None:
    script = Path(sys.executable).with_name("esc_nc_cli")
    result = subprocess.run(
        [str(script), "--port", str(server.port), "--user", USER, "get-config"],
        env={"PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no password: give --password or $ESC_NC_PASSWORD" in result.stderr
