"""``esc_nc_cli notif``: stream escEvent notifications to the terminal until interrupted.

ESC users watch ``notif`` to follow what their requests did (reference §7). Each escEvent is
printed as one readable block (time, type, status, message, then the fields that are set),
or as the raw XML with ``--xml``. ``--since TIME`` replays from the server's event log
first; ``--until TIME`` ends after that time; ``--filter PATH`` narrows what the server
sends, with the PATH syntax of ``get``: ``escEvent[tenant='demo']`` (a subtree filter) or
an XPath such as ``/escEvent[event/type='VM_ALIVE']``.
Ctrl-C ends it with exit status 0. The formatting is pure and unit-tested.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from lxml import etree

from esc_orch.cli import payloads
from esc_orch.model.events import NETMOD_NOTIF_NS, format_event_time, parse_event_time
from esc_orch.model.schema import EO_NS, ESC_NS, NOTIF_NS

_HEAD = ("status", "status_code", "status_message", "event")
_MARKERS = {
    "replayComplete": "-- replay complete: live notifications follow --",
    "notificationComplete": "-- notification complete: stopTime reached --",
}


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, unless it is none or the help names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


class SessionClosed(ConnectionError):
    """The server closed the session while we were waiting for notifications."""


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _leaves(element: etree._Element) -> str:
    return " ".join(
        f"{_local(child)}={(child.text or '').strip()}"
        for child in element
        if isinstance(child.tag, str) and not len(child)
    )


def format_notification(root: etree._Element) -> str:
    """One readable block for a ``<notification>`` element."""
    when = root.findtext(f"{{{NOTIF_NS}}}eventTime") or "?"
    content = next((c for c in root if isinstance(c.tag, str) and _local(c) != "eventTime"), None)
    if content is None:
        return f"{when}  (empty notification)"
    if etree.QName(content).namespace == NETMOD_NOTIF_NS and _local(content) in _MARKERS:
        return f"{when}  {_MARKERS[_local(content)]}"
    if etree.QName(content).namespace == EO_NS:  # ours (yang/esc-orch.yang): flat leaves
        message = (content.findtext(f"{{{EO_NS}}}message") or "").strip()
        rest = [
            f"{_local(c)}: {(c.text or '').strip()}"
            for c in content
            if isinstance(c.tag, str) and not len(c) and _local(c) != "message"
        ]
        lines = [f"{when}  eo:{_local(content)}"]
        if message:
            lines.append(f"  {message}")
        return "\n".join([*lines, "  " + "  ".join(rest)] if rest else lines)
    if content.tag != f"{{{ESC_NS}}}escEvent":
        return f"{when}  {_local(content)}\n" + payloads.pretty(content)

    def text(name: str) -> str:
        return (content.findtext(f"{{{ESC_NS}}}{name}") or "").strip()

    kind = content.findtext(f"{{{ESC_NS}}}event/{{{ESC_NS}}}type") or "?"
    lines = [f"{when}  {kind}  {text('status')} {text('status_code')}".rstrip()]
    if text("status_message"):
        lines.append(f"  {text('status_message')}")
    flat = [
        f"{_local(c)}: {(c.text or '').strip()}"
        for c in content
        if isinstance(c.tag, str) and not len(c) and _local(c) not in _HEAD
    ]
    if flat:
        lines.append("  " + "  ".join(flat))
    for vm in ("vm_source", "vm_target"):
        node = content.find(f"{{{ESC_NS}}}{vm}")
        if node is None:
            continue
        lines.append(f"  {vm}: {_leaves(node)}".rstrip())
        for nic in node.iterfind(f"{{{ESC_NS}}}interfaces/{{{ESC_NS}}}interface"):
            lines.append(f"    interface {_leaves(nic)}")
    details = content.findtext(f"{{{ESC_NS}}}event/{{{ESC_NS}}}details")
    if details:
        lines.append(f"  details: {details}")
    return "\n".join(lines)


def _time_arg(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return format_event_time(parse_event_time(value))
    except ValueError:
        raise payloads.PayloadError(
            f"{option} needs an RFC 3339 time such as 2024-05-01T10:00:00Z, not {value!r}"
        ) from None


def subscribed_text(*, stream: str, since: str | None, until: str | None, path: str | None) -> str:
    """The line that tells the person the subscription is in place, and what it replays."""
    if since is None:
        what = "live events only"
    elif until is None:
        what = f"replaying from {since}, then live"
    else:
        what = f"replaying from {since} until {until}"
    where = f", filter {path}" if path else ""
    return f"esc_nc_cli: subscribed to {stream} ({what}{where}); Ctrl-C to stop"


def cmd_notif(
    m: Any, args: argparse.Namespace, *, out: TextIO | None = None, status: TextIO | None = None
) -> None:
    """Subscribe, then print each notification until Ctrl-C, stopTime or ``--count``.

    Notifications go to ``out`` (stdout), each followed by an empty line; the line saying
    that the subscription is in place goes to ``status`` (stderr), so stdout stays data.
    """
    out = out or sys.stdout
    status = status or sys.stderr
    since = _time_arg(args.since, "--since")
    until = _time_arg(args.until, "--until")
    if until is not None and since is None:
        raise payloads.PayloadError("--until needs --since (RFC 5277 stopTime needs startTime)")
    flt = payloads.path_filter(args.filter)
    m.create_subscription(
        stream_name=args.stream,
        filter=flt.as_ncclient() if flt else None,
        start_time=since,
        stop_time=until,
    )
    print(
        subscribed_text(stream=args.stream, since=since, until=until, path=args.filter),
        file=status,
        flush=True,
    )
    printed = 0
    try:
        while args.count is None or printed < args.count:
            notification = m.take_notification(block=True, timeout=0.5)
            if notification is None:
                if not m.connected:
                    raise SessionClosed("the server closed the session")
                continue
            root = notification.notification_ele
            text = payloads.pretty(root) if args.xml else format_notification(root)
            print(text.rstrip("\n") + "\n", file=out, flush=True)  # an empty line after each
            if root.find(f"{{{NETMOD_NOTIF_NS}}}notificationComplete") is not None:
                return
            if root.find(f"{{{ESC_NS}}}escEvent") is not None:
                printed += 1
    except KeyboardInterrupt:
        return


def add_notif_command(sub: Any) -> None:
    text = "print notifications as they arrive (Ctrl-C to stop)"
    p: argparse.ArgumentParser = sub.add_parser(
        "notif",
        help=text,
        description=text + ". Says on stderr when it is subscribed; events go to stdout, "
        "each followed by an empty line.",
        formatter_class=DefaultsHelp,
    )
    p.set_defaults(func=cmd_notif)
    p.add_argument("--stream", default="escEvent", choices=["escEvent", "NETCONF"], help="stream")
    p.add_argument(
        "--since",
        metavar="TIME",
        help="replay from this RFC 3339 time first, e.g. 2026-05-01T10:00:00Z "
        "(default: live events only)",
    )
    p.add_argument("--until", metavar="TIME", help="stop after this time (needs --since)")
    p.add_argument(
        "--filter",
        metavar="PATH",
        help="e.g. \"escEvent[tenant='demo']\" or \"/escEvent[event/type='VM_ALIVE']\"",
    )
    p.add_argument("--xml", action="store_true", help="print the raw notification XML")
    p.add_argument("--count", type=int, metavar="N", help="exit after N escEvents")
