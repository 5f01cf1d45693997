"""``esc_nc_cli``: the ESC-compatible NETCONF command line, on ncclient.

``esc_nc_cli --user U --password PW <command> [args]`` as ESC users know it (reference §7).
Output is pretty-printed XML; an ``rpc-error`` is printed readably (tag, path, message,
info) and the exit status is 1; a connection or login failure exits 3; usage errors exit 2.
ncclient is tuned as the architecture notes require: ``TICK`` at 1 ms and a TCP_NODELAY
socket handed over through its ``sock=`` argument.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ncclient.transport.session
from lxml import etree
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, SSHError, TransportError

from esc_orch.cli import payloads
from esc_orch.cli.notif import add_notif_command
from esc_orch.model.errors import RpcError
from esc_orch.model.xmlsafe import parse_xml

ncclient.transport.session.TICK = 0.001

EXIT_OK, EXIT_RPC_ERROR, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
ACTIONS = ["START", "STOP", "REBOOT", "ENABLE_MONITOR", "DISABLE_MONITOR"]


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
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    p = add("edit-config", cmd_edit_config, "send an edit-config with the XML of FILE")
    p.add_argument("file", metavar="FILE", help="<esc_datamodel> or <config> XML file")
    p.add_argument("--target", choices=["running", "candidate"], default="running")
    p = add("get-config", cmd_get_config, "show configuration (optionally filtered by PATH)")
    p.add_argument("path", nargs="?", metavar="PATH", help="e.g. esc_datamodel/tenants or /xpath")
    p.add_argument("--source", choices=["running", "candidate"], default="running")
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
    p.add_argument("action", metavar="ACTION", choices=ACTIONS, help=" | ".join(ACTIONS))
    p.add_argument("vm", metavar="VM", help="the VM name")
    p.add_argument("--force", action="store_true")
    p = add("service-action", cmd_service_action, "start/stop/reboot/monitor a deployment")
    p.add_argument("action", metavar="ACTION", choices=ACTIONS, help=" | ".join(ACTIONS))
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("deployment", metavar="DEP")
    p = add("recovery-vm-action", cmd_recovery_vm_action, "run the recovery procedure of a VM")
    p.add_argument("action", metavar="DO", choices=["DO"])
    p.add_argument("vm", metavar="VM")
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
        prog="esc_nc_cli", description="NETCONF client for esc-orch (ESC compatible)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=830)
    parser.add_argument("--user", default=os.environ.get("ESC_NC_USER"), help="or $ESC_NC_USER")
    parser.add_argument(
        "--password", default=os.environ.get("ESC_NC_PASSWORD"), help="or $ESC_NC_PASSWORD"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.user or args.password is None:
        print(
            "esc_nc_cli: --user and --password (or ESC_NC_USER/ESC_NC_PASSWORD) are required",
            file=sys.stderr,
        )
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
