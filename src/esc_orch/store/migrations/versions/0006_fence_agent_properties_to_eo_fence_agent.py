"""fence agents: the ``fence_agent_*`` properties of a vim_connector become ``eo:fence_agent``

Revision ID: 0006
Revises: 0005
Created: 2026-12-01

No table changes: the XML of the ``vim_connector`` units (running and candidate rows of
``config_unit``) is rewritten. Before, a fence agent was configured in free-form properties of
ESC's vim_connector; now it is our augment ``eo:fence_agent`` (yang/esc-orch.yang, namespace
``urn:esc-orch:yang:esc-orch``), and the properties are refused at edit time. Per connector
holding any ``fence_agent_<name>`` property:

* ``fence_agent_type`` → ``eo:fence_agent/type``; without it (or empty) the old daemon
  configured no agent, so the properties, which did nothing, are dropped;
* ``fence_agent_url`` → ``url``; ``fence_agent_host`` → ``host``;
* ``fence_agent_timeout`` → ``timeout`` (whole seconds, rounded up, 1..600; a value that is
  no number is dropped: the old agent refused to fence with it);
* ``fence_agent_user`` named one of the connector's ``users`` whose ``password`` credential
  was the controller's password: that value (a Fernet token when secrets are encrypted: it
  is moved as it is, and decrypts under ``eo:fence_agent/password`` with the same key) →
  ``password``, the login (``fence_agent_login``, default that user id) → ``username``. The
  user entry is removed, unless it is the connector's first user with a password (the one
  the VIM connector logs in with). Without such a password, no credentials are written;
* any other ``fence_agent_<name>`` → ``eo:fence_agent/properties/property`` ``<name>``.

Downgrade writes the reverse: the properties, and a user ``fence-agent`` (``fence-agent-2``...
if taken) holding the password. The XML handling is written out here, on purpose: this
revision must keep working when the schema code changes later.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from lxml import etree

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ESC = "http://www.cisco.com/esc/esc"
EO = "urn:esc-orch:yang:esc-orch"
PREFIX = "fence_agent_"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)

_units = sa.table(
    "config_unit",
    sa.column("datastore", sa.String),
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("xml", sa.LargeBinary),
)


def _e(name: str) -> str:
    return f"{{{ESC}}}{name}"


def _o(name: str) -> str:
    return f"{{{EO}}}{name}"


def _canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _password(user: etree._Element) -> etree._Element | None:
    for prop in user.iterfind(f"{_e('credentials')}/{_e('properties')}/{_e('property')}"):
        if prop.findtext(_e("name")) == "password":
            return prop.find(_e("value"))
    return None


def _timeout(text: str) -> str | None:
    try:
        seconds = math.ceil(float(text.strip()))
    except (ValueError, OverflowError):
        return None
    return str(min(max(seconds, 1), 600))


def to_fence_agent(xml: bytes) -> bytes | None:
    """The unit with its fence_agent_* properties as eo:fence_agent (None: nothing to do)."""
    root = etree.fromstring(xml, _PARSER)
    props = root.find(_e("properties"))
    if props is None:
        return None
    found: dict[str, str] = {}
    for prop in list(props.iterfind(_e("property"))):
        name = prop.findtext(_e("name")) or ""
        if name.startswith(PREFIX):
            found[name[len(PREFIX) :]] = prop.findtext(_e("value")) or ""
            props.remove(prop)
    if not found:
        return None
    if len(props) == 0:
        root.remove(props)
    kind = found.pop("type", "").strip()
    if not kind:
        return _canonical(root)
    host = found.pop("host", "").strip()
    user_id = found.pop("user", "").strip()
    login = found.pop("login", "").strip() or user_id
    url = found.pop("url", None)
    timeout = _timeout(found.pop("timeout", "") or "x")
    password = None
    users = root.find(_e("users"))
    if user_id and users is not None:
        entries = list(users.iterfind(_e("user")))
        first_with_password = next((u for u in entries if _password(u) is not None), None)
        for user in entries:
            secret = _password(user)
            if user.findtext(_e("id")) == user_id and secret is not None:
                password = secret.text or ""
                if user is not first_with_password:
                    users.remove(user)
        if len(users) == 0:
            root.remove(users)
    fence = etree.SubElement(root, _o("fence_agent"), nsmap={"eo": EO})
    etree.SubElement(fence, _o("type")).text = kind
    if url:
        etree.SubElement(fence, _o("url")).text = url
    if host:
        etree.SubElement(fence, _o("host")).text = host
    if password is not None and login:
        etree.SubElement(fence, _o("username")).text = login
        etree.SubElement(fence, _o("password")).text = password
    if timeout is not None:
        etree.SubElement(fence, _o("timeout")).text = timeout
    if found:
        extra = etree.SubElement(fence, _o("properties"))
        for name, value in found.items():
            entry = etree.SubElement(extra, _o("property"))
            etree.SubElement(entry, _o("name")).text = name
            etree.SubElement(entry, _o("value")).text = value
    return _canonical(root)


def to_properties(xml: bytes) -> bytes | None:
    """The reverse of :func:`to_fence_agent` (None: nothing to do)."""
    root = etree.fromstring(xml, _PARSER)
    fence = root.find(_o("fence_agent"))
    if fence is None:
        return None
    root.remove(fence)
    values: list[tuple[str, str]] = []
    for leaf in ("type", "url", "host", "timeout"):
        text = fence.findtext(_o(leaf))
        if text is not None:
            values.append((PREFIX + leaf, text))
    for prop in fence.iterfind(f"{_o('properties')}/{_o('property')}"):
        values.append(
            (PREFIX + (prop.findtext(_o("name")) or ""), prop.findtext(_o("value")) or "")
        )
    username = fence.findtext(_o("username"))
    password = fence.findtext(_o("password"))
    users = root.find(_e("users"))
    if username is not None and password is not None:
        if users is None:
            users = etree.SubElement(root, _e("users"))
        taken = {u.findtext(_e("id")) for u in users.iterfind(_e("user"))}
        user_id, n = "fence-agent", 1
        while user_id in taken:
            n += 1
            user_id = f"fence-agent-{n}"
        user = etree.SubElement(users, _e("user"))
        etree.SubElement(user, _e("id")).text = user_id
        cred = etree.SubElement(etree.SubElement(user, _e("credentials")), _e("properties"))
        entry = etree.SubElement(cred, _e("property"))
        etree.SubElement(entry, _e("name")).text = "password"
        etree.SubElement(entry, _e("value")).text = password
        values += [(PREFIX + "user", user_id), (PREFIX + "login", username)]
    props = root.find(_e("properties"))
    if props is None:
        props = etree.Element(_e("properties"))
        anchor = root.find(_e("type"))
        if anchor is not None:
            anchor.addnext(props)
        else:
            root.append(props)
    for name, value in values:
        entry = etree.SubElement(props, _e("property"))
        etree.SubElement(entry, _e("name")).text = name
        etree.SubElement(entry, _e("value")).text = value
    return _canonical(root)


def _rewrite(convert: Callable[[bytes], bytes | None]) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_units.c.datastore, _units.c.key, _units.c.xml).where(
            _units.c.kind == "vim_connector", _units.c.xml.is_not(None)
        )
    ).all()
    for datastore, key, xml in rows:
        new = convert(bytes(xml))
        if new is None:
            continue
        bind.execute(
            sa.update(_units)
            .where(
                _units.c.datastore == datastore,
                _units.c.kind == "vim_connector",
                _units.c.key == key,
            )
            .values(xml=new)
        )


def upgrade() -> None:
    _rewrite(to_fence_agent)


def downgrade() -> None:
    _rewrite(to_properties)
