"""The real daemon keeps its files private and never writes a VIM password (defect 8).

Run with umask 022 (the usual default): the data directory was 0755 and the SQLite WAL
0644, with the VIM passwords in clear inside. Operations that touch a connector (create,
read, a refused edit, a refused delete, an error) are run over NETCONF; then the daemon's
log, every reply and every file of the data directory are searched for the password.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from ncclient.operations.rpc import RPCError

from nbsupport.orchd import OrchdProcess
from nbsupport.server import nc_connect

pytestmark = pytest.mark.functional

ESC = "http://www.cisco.com/esc/esc"
VIM_PASSWORD = "Kp4-unique-vim-secret"
ADMIN_PASSWORD = "admin-pw-secrets"


def _connector(password: str, *, extra: str = "", op: str = "") -> str:
    return f"""<config><esc_system_config xmlns="{ESC}"><vim_connectors><vim_connector{op}>
      <id>CSP-9</id><type>CSP</type>
      <properties><property><name>url</name><value>http://127.0.0.1:9</value></property>
      </properties>
      <users><user><id>admin</id><credentials><properties>
        <property><name>password</name><value>{password}</value></property>{extra}
      </properties></credentials></user></users>
    </vim_connector></vim_connectors></esc_system_config></config>"""


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_files_are_private_and_the_password_appears_nowhere(
    tmp_path: Path, umask_022: None
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)  # as an operator's mkdir would leave it
    replies: list[str] = []
    with OrchdProcess(
        data_dir=data_dir,
        user="admin",
        password=ADMIN_PASSWORD,
        extra_args=("--log-level", "debug"),
    ) as daemon:
        with nc_connect(daemon.port, user="admin", password=ADMIN_PASSWORD) as m:
            replies.append(str(m.edit_config(target="running", config=_connector(VIM_PASSWORD))))
            replies.append(str(m.get_config(source="running")))
            replies.append(str(m.get()))
            refused = [
                _connector(
                    VIM_PASSWORD,
                    op=' xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="create"',
                ),  # data-exists
                _connector(VIM_PASSWORD, extra=f"<bogus>{VIM_PASSWORD}</bogus>"),  # unknown
                _connector(VIM_PASSWORD).replace("<type>CSP", "<type>NOPE"),  # unknown type
                _connector(VIM_PASSWORD).replace("<id>admin", "<id>" + "u" * 300),  # too long
            ]
            for config in refused:
                try:
                    replies.append(str(m.edit_config(target="running", config=config)))
                except RPCError as exc:
                    replies.append(f"{exc.tag} {exc.message} {exc.info}")
            replies.append(str(m.get_config(source="running")))
            # While the daemon runs, so the WAL and SHM files exist.
            files = {p: p.lstat().st_mode for p in [data_dir, *data_dir.rglob("*")]}
            contents = {p.name: p.read_bytes() for p in files if p.is_file()}
        log = daemon.log()
    assert any(p.name.endswith("-wal") for p in files), sorted(p.name for p in files)
    for path, mode in files.items():
        want = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) & 0o077 == 0, f"{path.name} is {oct(stat.S_IMODE(mode))}"
        assert stat.S_IMODE(mode) <= want
    needle = VIM_PASSWORD.encode()
    assert [name for name, data in contents.items() if needle in data] == []
    assert VIM_PASSWORD not in log
    assert [r for r in replies if VIM_PASSWORD in r] == []
    assert "CSP-9" in replies[1]  # the connector is there, its password masked


def test_a_rejected_and_an_accepted_vim_password_stay_out_of_logs_events_and_replies(
    tmp_path: Path,
) -> None:
    """Against the CSP emulator: a wrong password (401, VIM_CONNECTION_STATE down), then the
    right one (up); neither password appears in the log, the opdata or the event log."""
    import time  # noqa: PLC0415

    from lxml import etree  # noqa: PLC0415

    from esc_orch.testing.emulator import EmulatorHost  # noqa: PLC0415

    wrong = "Wr0ng-unique-vim-pw"
    host = EmulatorHost(name="csp-s", root=tmp_path / "csp", password=VIM_PASSWORD)
    replies: list[str] = []
    with (
        host,
        OrchdProcess(
            data_dir=tmp_path / "data",
            user="admin",
            password=ADMIN_PASSWORD,
            extra_args=("--log-level", "debug"),
        ) as daemon,
    ):
        url = host.url
        with nc_connect(daemon.port, user="admin", password=ADMIN_PASSWORD) as m:
            for password, status in (
                (wrong, "CONNECTION_FAILED"),
                (VIM_PASSWORD, "CONNECTION_SUCCESSFUL"),
            ):
                config = _connector(password).replace("http://127.0.0.1:9", url)
                replies.append(str(m.edit_config(target="running", config=config)))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    state = str(m.get())
                    replies.append(state)
                    found = etree.fromstring(state.encode()).findtext(
                        f".//{{{ESC}}}opdata/{{{ESC}}}vim_connectors/{{{ESC}}}vim_connector/"
                        f"{{{ESC}}}status"
                    )
                    if found == status:
                        break
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"connector never reached {status}: {replies[-1][-800:]}")
            contents = {
                p.name: p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file()
            }
        log = daemon.log()
    assert b"VIM_CONNECTION_STATE" in b"".join(contents.values())  # the events are stored
    for secret in (wrong, VIM_PASSWORD):
        assert secret not in log
        assert [r for r in replies if secret in r] == []
        assert [name for name, data in contents.items() if secret.encode() in data] == []
