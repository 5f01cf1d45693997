"""A bare NETCONF-over-SSH client (base:1.0 framing) for hostile-input tests: we choose
every byte sent, and see every byte received."""

from __future__ import annotations

import asyncio

import asyncssh
from lxml import etree

from nbsupport.server import PASSWORD, USER

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
EOM = b"]]>]]>"
HELLO_10 = (
    f'<hello xmlns="{NC}"><capabilities>'
    "<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>"
).encode()
_HUGE = etree.XMLParser(huge_tree=True)


class EomClient:
    """``await EomClient.open(port)``; ``send(xml)``; ``await reply()``; ``close()``."""

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        writer: asyncssh.SSHWriter[bytes],
        reader: asyncssh.SSHReader[bytes],
    ) -> None:
        self.conn, self.writer, self.reader = conn, writer, reader

    @classmethod
    async def open(cls, port: int, *, password: str = PASSWORD, user: str = USER) -> EomClient:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                "127.0.0.1",
                port,
                username=user,
                password=password,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
            ),
            timeout=30,
        )
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        client = cls(conn, writer, reader)
        await client.raw_reply(wait=10)  # the server's hello
        client.send(HELLO_10)
        return client

    def send(self, message: bytes) -> None:
        self.writer.write(message + EOM)

    async def raw_reply(self, *, wait: float = 30) -> bytes:
        data = await asyncio.wait_for(self.reader.readuntil(EOM), timeout=wait)
        return data[: -len(EOM)]

    async def reply(self, *, wait: float = 30) -> etree._Element:
        return etree.fromstring(await self.raw_reply(wait=wait), _HUGE)

    def close(self) -> None:
        self.conn.close()


#: A tiny get-config: proves a session works end to end.
EEOM_CHECK = (
    f'<rpc xmlns="{NC}" message-id="check"><get-config><source><running/></source>'
    "</get-config></rpc>"
).encode()
