"""``esc_nc_cli``: the ESC-compatible NETCONF command line, on ncclient.

``esc_nc_cli --user U --password PW <command> [args]`` as ESC users know it (reference §7).
Without ``--password`` or ``$ESC_NC_PASSWORD`` it prompts for the password when standard
input is a terminal (never echoed), and refuses with a clear message otherwise. ``--help``
shows each option's default and the valid values. Output is pretty-printed XML; an
``rpc-error`` is printed readably (tag, path, message, info) and the exit status is 1; a
connection or login failure exits 3; usage errors exit 2. ncclient's session thread
wakes when a request is queued instead of polling every 1 ms (``cli/wakeup.py``: an idle
``notif`` costs nothing), and gets a TCP_NODELAY socket through its ``sock=`` argument.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from lxml import etree
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, SSHError, TransportError

from esc_orch.cli import payloads, wakeup
from esc_orch.cli.notif import DefaultsHelp, add_notif_command
from esc_orch.model.errors import RpcError
from esc_orch.model.xmlsafe import parse_xml

wakeup.install()  # sends wake ncclient's thread: no 1 ms polling, no 100 ms wait

EXIT_OK, EXIT_RPC_ERROR, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
ACTIONS = ["START", "STOP", "REBOOT", "ENABLE_MONITOR", "DISABLE_MONITOR"]
RECOVERY_ACTIONS = ["DO"]  # ESC's recoveryVmAction knows only DO (reference §7)
USER_ENV, PASSWORD_ENV = "ESC_NC_USER", "ESC_NC_PASSWORD"


def open_manager(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    timeout: float = 30.0,
    known_hosts: Path | None = None,
) -> Any:
    """An ncclient manager over a TCP_NODELAY socket (ncclient sets none: +40 ms per big reply).

    Host keys are verified against ``known_hosts`` when it is given. Used by esc_nc_cli, the
    demo, the benches and the tests, so all of them talk NETCONF the same way.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        m = manager.connect(
            host=host,
            port=port,
            username=user,
            password=password,
            sock=sock,
            hostkey_verify=known_hosts is not None,
            ssh_config=None,
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            device_params={"name": "default"},
            **({"known_hosts": str(known_hosts)} if known_hosts is not None else {}),
        )
    except BaseException:
        sock.close()
        raise
    m.timeout = timeout
    return m


def connect(args: argparse.Namespace) -> Any:
    """The manager for the command line's --host/--port/--user/--password/--known-hosts."""
    return open_manager(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        timeout=args.timeout,
        known_hosts=args.known_hosts,
    )


def _print_data(reply: Any) -> None:
    data = reply.data_ele
    print(payloads.pretty(data if data is not None else parse_xml(reply.xml)))


def cmd_edit_config(m: Any, args: argparse.Namespace) -> None:
    config = payloads.config_from_file(Path(args.file).read_bytes())
    m.edit_config(target=args.target, config=config)
    if args.target == "candidate":
        m.commit()
    print("<ok/>")


def cmd_get_config(m: Any, args: argparse.Namespace) -> None:
    flt = payloads.path_filter(args.path)
    _print_data(m.get_config(source=args.source, filter=flt.as_ncclient() if flt else None))


def cmd_get(m: Any, args: argparse.Namespace) -> None:
    flt = payloads.path_filter(args.path)
    _print_data(m.get(filter=flt.as_ncclient() if flt else None))


def _edit(m: Any, config: etree._Element) -> None:
    m.edit_config(target="running", config=config)
    print("<ok/>")


def cmd_create_tenant(m: Any, args: argparse.Namespace) -> None:
    _edit(m, payloads.tenant_config(args.name, operation="create"))


def cmd_delete_tenant(m: Any, args: argparse.Namespace) -> None:
    _edit(m, payloads.tenant_config(args.name, operation="delete"))


def cmd_delete_dep(m: Any, args: argparse.Namespace) -> None:
    _edit(m, payloads.delete_deployment_config(args.tenant, args.deployment))


def _dispatch(m: Any, rpc: etree._Element) -> None:
    reply = m.dispatch(rpc)
    root = parse_xml(reply.xml)
    ok = len(root) == 1 and etree.QName(root[0]).localname == "ok"
    print("<ok/>" if ok else payloads.pretty(root))


def cmd_vm_action(m: Any, args: argparse.Namespace) -> None:
    _dispatch(m, payloads.vm_action(args.action, args.vm, force=args.force))


def cmd_service_action(m: Any, args: argparse.Namespace) -> None:
    _dispatch(m, payloads.service_action(args.action, args.tenant, args.deployment))


def cmd_recovery_vm_action(m: Any, args: argparse.Namespace) -> None:
    _dispatch(m, payloads.recovery_vm_action(args.action, args.vm))


def cmd_confirm_host_down(m: Any, args: argparse.Namespace) -> None:
    _dispatch(m, payloads.confirm_host_down(args.vim_id))


def cmd_recheck_vim(m: Any, args: argparse.Namespace) -> None:
    _dispatch(m, payloads.recheck_vim_connector(args.vim_id))


Command = Callable[[Any, argparse.Namespace], None]


def _add_commands(sub: Any) -> None:
    def add(name: str, func: Command, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=text, description=text, formatter_class=DefaultsHelp
        )
        p.set_defaults(func=func)
        return p

    p = add("edit-config", cmd_edit_config, "send an edit-config with the XML of FILE")
    p.add_argument("file", metavar="FILE", help="<esc_datamodel> or <config> XML file")
    p.add_argument(
        "--target",
        choices=["running", "candidate"],
        default="running",
        help="candidate: edit it, then commit",
    )
    p = add("get-config", cmd_get_config, "show configuration (optionally filtered by PATH)")
    p.add_argument("path", nargs="?", metavar="PATH", help="e.g. esc_datamodel/tenants or /xpath")
    p.add_argument(
        "--source", choices=["running", "candidate"], default="running", help="datastore"
    )
    p = add("get", cmd_get, "show configuration and operational data under PATH")
    p.add_argument("path", nargs="?", metavar="PATH", help="e.g. esc_datamodel/opdata or /xpath")
    p = add("create-tenant", cmd_create_tenant, "create a tenant")
    p.add_argument("name", metavar="NAME")
    p = add("delete-tenant", cmd_delete_tenant, "delete a tenant")
    p.add_argument("name", metavar="NAME")
    p = add("delete-dep", cmd_delete_dep, "delete a deployment of a tenant")
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("deployment", metavar="DEP")
    p = add("vm-action", cmd_vm_action, "start/stop/reboot/monitor one VM")
    p.add_argument("action", metavar="ACTION", choices=ACTIONS, help="one of " + ", ".join(ACTIONS))
    p.add_argument("vm", metavar="VM", help="the VM name")
    p.add_argument("--force", action="store_true", help="act even if the VM is busy")
    p = add("service-action", cmd_service_action, "start/stop/reboot/monitor a deployment")
    p.add_argument("action", metavar="ACTION", choices=ACTIONS, help="one of " + ", ".join(ACTIONS))
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("deployment", metavar="DEP")
    p = add("recovery-vm-action", cmd_recovery_vm_action, "run the recovery procedure of a VM")
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=RECOVERY_ACTIONS,
        help="one of " + ", ".join(RECOVERY_ACTIONS) + " (the only recovery action ESC defines)",
    )
    p.add_argument("vm", metavar="VM", help="the VM name")
    p = add(
        "confirm-host-down",
        cmd_confirm_host_down,
        "confirm that the host of VIM connector VIM_ID is down (lets a waiting move go on)",
    )
    p.add_argument("vim_id", metavar="VIM_ID")
    p = add(
        "recheck-vim",
        cmd_recheck_vim,
        "check VIM connector VIM_ID now and re-arm the work waiting on it",
    )
    p.add_argument("vim_id", metavar="VIM_ID")
    add_notif_command(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esc_nc_cli",
        description="NETCONF client for esc-orch (ESC compatible).",
        formatter_class=DefaultsHelp,
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address")
    parser.add_argument("--port", type=int, default=830, help="server port")
    parser.add_argument("--user", help=f"user name (default: ${USER_ENV})")
    parser.add_argument(
        "--password",
        help=f"password (default: ${PASSWORD_ENV}; without either, prompted for on a terminal)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--known-hosts",
        type=Path,
        metavar="FILE",
        help="verify the server's host key against this known_hosts file (default: no check)",
    )
    _add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def _error_text(err: Any) -> str:
    raw = getattr(err, "xml", None)
    fields: dict[str, str] = {}
    info: list[str] = []
    if isinstance(raw, etree._Element):
        for child in raw:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "error-info":
                info = [f"{etree.QName(i).localname}={(i.text or '').strip()}" for i in child]
            else:
                fields[name] = (child.text or "").strip()
    else:
        fields = {"error-tag": str(err.tag), "error-message": str(err.message)}
    lines = [f"rpc-error: {fields.get('error-tag', '?')} ({fields.get('error-type', '?')})"]
    if fields.get("error-path"):
        lines.append(f"  path:    {fields['error-path']}")
    if fields.get("error-message"):
        lines.append(f"  message: {fields['error-message']}")
    if info:
        lines.append(f"  info:    {', '.join(info)}")
    return "\n".join(lines)


class MissingCredentials(Exception):
    """No user, or no password and no terminal to ask for one."""


def credentials(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> tuple[str, str]:
    """User and password: options, then the environment, then a prompt on a terminal."""
    user = args.user or environ.get(USER_ENV)
    if not user:
        raise MissingCredentials(f"give the user name with --user or ${USER_ENV}")
    password = args.password if args.password is not None else environ.get(PASSWORD_ENV)
    if password is None:
        if not (stdin or sys.stdin).isatty():
            raise MissingCredentials(
                f"no password: give --password or ${PASSWORD_ENV}, or run esc_nc_cli from a "
                "terminal to be asked for it"
            )
        password = prompt(f"password of {user}@{args.host}:{args.port}: ")
    return user, password


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.user, args.password = credentials(args)
    except MissingCredentials as exc:
        print(f"esc_nc_cli: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (EOFError, KeyboardInterrupt):
        print("", file=sys.stderr)
        return EXIT_USAGE
    try:
        m = connect(args)
    except AuthenticationError:
        print(f"esc_nc_cli: authentication failed for {args.user}", file=sys.stderr)
        return EXIT_CONNECT
    except (OSError, SSHError, TransportError) as exc:
        print(f"esc_nc_cli: cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    try:
        args.func(m, args)
    except RPCError as exc:
        for err in exc.errlist or [exc]:
            print(_error_text(err), file=sys.stderr)
        return EXIT_RPC_ERROR
    except ConnectionError as exc:
        print(f"esc_nc_cli: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    except (payloads.PayloadError, RpcError, OSError) as exc:
        print(f"esc_nc_cli: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        with contextlib.suppress(Exception):  # the session may already be gone
            m.close_session()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
