"""The real asyncssh NETCONF server on 127.0.0.1, driven by ncclient and raw SSH clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError

from esc_orch.daemon.users import UserStore
from esc_orch.northbound.framing import encode_chunked, encode_eom
from esc_orch.northbound.session import NetconfCapability
from nbsupport.memory_backend import MemoryBackend
from nbsupport.server import (
    FAST_LIMITS,
    PASSWORD,
    USER,
    ServerThread,
    cheap_hasher,
    nc_connect,
    prepare_data_dir,
)

pytestmark = pytest.mark.functional

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ESC = "http://www.cisco.com/esc/esc"
TENANT = (
    f'<config><esc_datamodel xmlns="{ESC}"><tenants><tenant><name>{{}}</name></tenant>'
    "</tenants></esc_datamodel></config>"
)
HELLO_11 = (
    f'<hello xmlns="{NC}"><capabilities><capability>{NetconfCapability.BASE_10}</capability>'
    f"<capability>{NetconfCapability.BASE_11}</capability></capabilities></hello>"
).encode()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_data_dir(tmp_path_factory.mktemp("nb-data"))


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerThread]:
    srv = ServerThread(data_dir=data_dir, backend=MemoryBackend()).start()
    try:
        yield srv
    finally:
        srv.stop()


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


# ------------------------------------------------------------------ ncclient


def test_hello_capabilities_and_host_key(server: ServerThread, data_dir: Path) -> None:
    with nc_connect(server.port) as m:
        caps = set(m.server_capabilities)
        assert {
            NetconfCapability.BASE_10,
            NetconfCapability.BASE_11,
            NetconfCapability.CANDIDATE,
            NetconfCapability.XPATH,
        } <= caps
        assert any(c.startswith(f"{ESC}?module=esc&revision=") for c in caps)
        assert NetconfCapability.STARTUP not in caps
        assert int(m.session_id) > 0
    key = data_dir / "ssh_host_ed25519_key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_edit_config_and_get_config_with_subtree_filter(server: ServerThread) -> None:
    with nc_connect(server.port) as m:
        m.edit_config(target="running", config=TENANT.format("A"))
        m.edit_config(target="running", config=TENANT.format("B"))
        flt = (
            f'<esc_datamodel xmlns="{ESC}"><tenants><tenant><name>B</name></tenant>'
            "</tenants></esc_datamodel>"
        )
        reply = m.get_config(source="running", filter=("subtree", flt))
        names = [n.text for n in reply.data_ele.iter(f"{{{ESC}}}name")]
        assert names == ["B"]


def test_get_with_xpath_filter_on_opdata(server: ServerThread) -> None:
    server.backend.state.append(
        etree.fromstring(
            f'<esc_datamodel xmlns="{ESC}"><opdata><tenants><tenant><name>T</name>'
            "<deployments><deployment_name>D</deployment_name><state_machine>"
            "<state>SERVICE_ACTIVE_STATE</state></state_machine></deployments>"
            "</tenant></tenants></opdata></esc_datamodel>"
        )
    )
    select = (
        "/esc_datamodel/opdata/tenants/tenant[name='T']/deployments[deployment_name='D']"
        "/state_machine/state"
    )
    with nc_connect(server.port) as m:
        reply = m.get(filter=("xpath", select))
        states = [s.text for s in reply.data_ele.iter(f"{{{ESC}}}state")]
        assert states == ["SERVICE_ACTIVE_STATE"]


def test_candidate_and_commit(server: ServerThread) -> None:
    with nc_connect(server.port) as m:
        m.edit_config(target="candidate", config=TENANT.format("C"))
        running = m.get_config(source="running").data_ele
        assert running.find(f".//{{{ESC}}}name") is None
        m.commit()
        running = m.get_config(source="running").data_ele
        assert running.findtext(f".//{{{ESC}}}name") == "C"


def test_lock_denied_names_holder_and_locks_die_with_session(server: ServerThread) -> None:
    a = nc_connect(server.port)
    b = nc_connect(server.port)
    try:
        a.lock(target="running")
        with pytest.raises(RPCError) as denied:
            b.lock(target="running")
        assert denied.value.tag == "lock-denied"
        assert f"<session-id>{a.session_id}</session-id>" in denied.value.info.replace(
            f' xmlns="{NC}"', ""
        ).replace("nc:", "")
        with pytest.raises(RPCError) as in_use:
            b.edit_config(target="running", config=TENANT.format("X"))
        assert in_use.value.tag == "in-use"
        a.close_session()
        _wait_for(lambda: server.session_count() == 1)
        b.lock(target="running")  # the lock died with session a
    finally:
        b.close_session()


def test_kill_session(server: ServerThread) -> None:
    a = nc_connect(server.port)
    b = nc_connect(server.port)
    try:
        b.lock(target="candidate")
        with pytest.raises(RPCError) as self_kill:
            a.kill_session(a.session_id)
        assert self_kill.value.tag == "invalid-value"
        a.kill_session(b.session_id)
        _wait_for(lambda: not b.connected)
        a.lock(target="candidate")
    finally:
        a.close_session()


def test_close_session_closes_the_transport(server: ServerThread) -> None:
    m = nc_connect(server.port)
    m.close_session()
    _wait_for(lambda: server.session_count() == 0)


def test_esc_rpc_error_and_unknown_rpc_keep_the_session(server: ServerThread) -> None:
    with nc_connect(server.port) as m:
        with pytest.raises(RPCError) as err:
            m.dispatch(etree.fromstring('<frob xmlns="urn:x"/>'))
        assert err.value.tag == "operation-not-supported"
        with pytest.raises(RPCError) as err:
            m.dispatch(
                etree.fromstring(
                    f'<vmAction xmlns="{ESC}"><actionType>STOP</actionType>'
                    "<vmName>v</vmName></vmAction>"
                )
            )
        assert err.value.tag == "operation-not-supported"
        assert m.get_config(source="running").ok


def test_wrong_password_gives_no_session(server: ServerThread) -> None:
    with pytest.raises(AuthenticationError):
        nc_connect(server.port, password="wrong")
    with pytest.raises(AuthenticationError):
        nc_connect(server.port, user="nobody")
    assert server.session_count() == 0
    with nc_connect(server.port) as m:  # the right password still works after the backoff
        assert m.connected


# ------------------------------------------------------------------ raw SSH


class RawClient:
    """A NETCONF client with no protocol smarts: we choose every byte."""

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        writer: asyncssh.SSHWriter[bytes],
        reader: asyncssh.SSHReader[bytes],
    ) -> None:
        self.conn, self.writer, self.reader = conn, writer, reader

    @classmethod
    async def open(cls, port: int) -> RawClient:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                "127.0.0.1",
                port,
                username=USER,
                password=PASSWORD,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
            ),
            timeout=10,
        )
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        raw = cls(conn, writer, reader)
        hello = await raw.read_until(b"]]>]]>")
        assert b"<session-id>" in hello
        return raw

    async def read_until(self, marker: bytes) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(marker), timeout=5)

    async def read_chunked(self) -> etree._Element:
        data = await self.read_until(b"\n##\n")
        body = b"".join(part.split(b"\n", 1)[1] for part in data[:-4].split(b"\n#")[1:])
        return etree.fromstring(body)

    async def closed(self) -> bool:
        """True once the server closed the channel (EOF), within the timeout."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout=5):
                pass
        except (asyncssh.Error, ConnectionError):
            pass
        return True

    def close(self) -> None:
        self.conn.close()


async def _in_thread_loop_check(server: ServerThread) -> None:
    """A fresh ncclient session still works (run in a thread: ncclient blocks)."""

    def check() -> None:
        with nc_connect(server.port) as m:
            assert m.get_config(source="running").ok

    await asyncio.to_thread(check)


async def test_message_id_and_attributes_echoed_and_rpc_in_hello_read(server: ServerThread) -> None:
    raw = await RawClient.open(server.port)
    try:
        rpc = (
            f'<rpc xmlns="{NC}" xmlns:ex="urn:example" message-id="m-42" ex:trace="abc" '
            'other="x"><get-config><source><running/></source></get-config></rpc>'
        ).encode()
        # the hello and the first chunked rpc in one write
        raw.writer.write(encode_eom(HELLO_11) + encode_chunked(rpc))
        reply = await raw.read_chunked()
        assert reply.get("message-id") == "m-42"
        assert reply.get("{urn:example}trace") == "abc"
        assert reply.get("other") == "x"
        assert reply.find(f"{{{NC}}}data") is not None
    finally:
        raw.close()


async def test_error_replies_over_ssh(server: ServerThread) -> None:
    raw = await RawClient.open(server.port)
    try:
        raw.writer.write(encode_eom(HELLO_11))
        raw.writer.write(encode_chunked(b"<rpc message-id='1'><get></rpc>"))
        reply = await raw.read_chunked()
        assert reply.findtext(f".//{{{NC}}}error-tag") == "malformed-message"
        assert reply.get("message-id") is None
        raw.writer.write(encode_chunked(f'<rpc xmlns="{NC}"><get/></rpc>'.encode()))
        reply = await raw.read_chunked()
        assert reply.findtext(f".//{{{NC}}}error-tag") == "missing-attribute"
        raw.writer.write(
            encode_chunked(f'<rpc xmlns="{NC}" message-id="2"><nope xmlns="urn:x"/></rpc>'.encode())
        )
        reply = await raw.read_chunked()
        assert reply.findtext(f".//{{{NC}}}error-tag") == "operation-not-supported"
        assert reply.get("message-id") == "2"
        # several rpcs in one write are answered in order
        raw.writer.write(
            b"".join(
                encode_chunked(f'<rpc xmlns="{NC}" message-id="{i}"><get/></rpc>'.encode())
                for i in range(5)
            )
        )
        ids = [(await raw.read_chunked()).get("message-id") for _ in range(5)]
        assert ids == [str(i) for i in range(5)]
    finally:
        raw.close()


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(encode_eom(HELLO_11) + b"\n#0\n", id="chunk-size-zero"),
        pytest.param(encode_eom(HELLO_11) + b"\n#abc\n", id="chunk-size-garbage"),
        pytest.param(b"GET / HTTP/1.0\r\n\r\n]]>]]>", id="garbage-before-hello"),
        pytest.param(
            encode_eom(
                (
                    f'<hello xmlns="{NC}"><capabilities><capability>urn:x</capability>'
                    "</capabilities></hello>"
                ).encode()
            ),
            id="hello-without-base",
        ),
        pytest.param(encode_eom(HELLO_11) + b"\n#99999999\n", id="chunk-above-max-message-size"),
    ],
)
async def test_broken_framing_closes_only_that_session(server: ServerThread, wire: bytes) -> None:
    bystander = await RawClient.open(server.port)
    victim = await RawClient.open(server.port)
    try:
        bystander.writer.write(encode_eom(HELLO_11))
        victim.writer.write(wire)
        assert await victim.closed()
        bystander.writer.write(
            encode_chunked(f'<rpc xmlns="{NC}" message-id="7"><get/></rpc>'.encode())
        )
        reply = await bystander.read_chunked()
        assert reply.get("message-id") == "7"
        await _in_thread_loop_check(server)
    finally:
        victim.close()
        bystander.close()


async def test_client_without_hello_is_dropped_after_the_timeout(server: ServerThread) -> None:
    silent = await RawClient.open(server.port)
    try:
        start = time.monotonic()
        assert await silent.closed()
        elapsed = time.monotonic() - start
        assert 0.5 < elapsed < 4  # hello_timeout is 1 s in FAST_LIMITS
        await _in_thread_loop_check(server)
    finally:
        silent.close()


async def test_client_vanishing_mid_message_is_dropped(server: ServerThread) -> None:
    raw = await RawClient.open(server.port)
    try:
        raw.writer.write(encode_eom(HELLO_11) + b"\n#100\n<rpc")
        start = time.monotonic()
        assert await raw.closed()
        assert time.monotonic() - start < 4  # message_timeout is 1 s
        _wait_for(lambda: server.session_count() == 0)
    finally:
        raw.close()


async def test_base10_client_session(server: ServerThread) -> None:
    raw = await RawClient.open(server.port)
    try:
        hello10 = (
            f'<hello xmlns="{NC}"><capabilities>'
            f"<capability>{NetconfCapability.BASE_10}</capability>"
            "</capabilities></hello>"
        )
        raw.writer.write(
            encode_eom(hello10.encode())
            + encode_eom(f'<rpc xmlns="{NC}" message-id="5"><get/></rpc>'.encode())
        )
        data = await raw.read_until(b"]]>]]>")
        reply = etree.fromstring(data[:-6])
        assert reply.get("message-id") == "5"
    finally:
        raw.close()


async def test_public_key_login_and_unknown_key_refused(
    server: ServerThread, data_dir: Path
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519")
    store = UserStore(path=data_dir / "users.json", hasher=cheap_hasher())
    if "keyuser" not in store.users():
        store.add(
            name="keyuser", password=None, authorized_keys=(key.export_public_key().decode(),)
        )

    async def login(client_key: asyncssh.SSHKey) -> bytes:
        async with asyncssh.connect(
            "127.0.0.1",
            server.port,
            username="keyuser",
            client_keys=[client_key],
            known_hosts=None,
            agent_path=None,
            password=None,
        ) as conn:
            _, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            return await asyncio.wait_for(reader.readuntil(b"]]>]]>"), timeout=5)

    hello = await asyncio.wait_for(login(key), timeout=10)
    assert b"<session-id>" in hello
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncio.wait_for(login(other), timeout=10)


async def test_max_sessions(data_dir: Path) -> None:
    limits = replace(FAST_LIMITS, max_sessions=1)
    srv = ServerThread(data_dir=data_dir, backend=MemoryBackend(), limits=limits).start()
    try:
        first = await RawClient.open(srv.port)
        try:
            with pytest.raises(asyncssh.ChannelOpenError):
                await RawClient.open(srv.port)
        finally:
            first.close()
    finally:
        await asyncio.to_thread(srv.stop)
