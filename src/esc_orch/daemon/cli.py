"""``esc-orchd``: run the NETCONF daemon (``serve``) and manage its users.

``serve`` logs to stderr in a readable ``key=value`` form (journald keeps it), tells systemd
when it is ready and when it stops, and stops cleanly on SIGTERM/SIGINT (exit 0). The
in-process :func:`run_server` is what the functional tests use, with their own backend.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from esc_orch import failpoints
from esc_orch.daemon.config import ConfigError, DaemonConfig, load_config
from esc_orch.daemon.retention import PrunableEventSource, prune_forever
from esc_orch.daemon.sdnotify import sd_notify
from esc_orch.daemon.users import UserStore, UserStoreError
from esc_orch.daemon.wiring import Parts, WiringError, build_backend, esc_revision, start_parts
from esc_orch.northbound.app import build_core
from esc_orch.northbound.auth import Authenticator, LoginThrottle
from esc_orch.northbound.backend import ConfigBackend
from esc_orch.northbound.eo_rpcs import EoActionSink
from esc_orch.northbound.esc_rpcs import EscActionSink
from esc_orch.northbound.notifications import NotificationService
from esc_orch.northbound.ssh import NetconfSshServer

log = logging.getLogger("esc_orch.daemon")

HOST_KEY_FILE = "ssh_host_ed25519_key"
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})))


class KeyValueFormatter(logging.Formatter):
    """``2024-05-01T10:00:00.123Z INFO esc_orch.northbound.ssh session started session=3``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"{stamp}.{int(record.msecs):03d}Z",
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                text = str(value)
                parts.append(f"{key}={text!r}" if (" " in text or not text) else f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


@contextlib.asynccontextmanager
async def run_server(
    *,
    config: DaemonConfig,
    backend: ConfigBackend,
    throttle: LoginThrottle | None = None,
    authenticator: Authenticator | None = None,
    events: PrunableEventSource | None = None,
    esc_sink: EscActionSink | None = None,
    eo_sink: EoActionSink | None = None,
) -> AsyncIterator[NetconfSshServer]:
    """Start the NETCONF server of ``config`` over ``backend``; stop it on exit.

    ``authenticator`` defaults to the user store of the data directory. With ``events`` (the
    durable event log) the server offers notifications and prunes the log in the background.
    ``esc_sink`` carries out serviceAction/vmAction (the lifecycle); without it they are
    answered operation-not-supported; ``eo_sink`` the same for our RPCs (confirm-host-down,
    recheck-vim-connector).
    """
    if config.data_dir is None:
        raise ConfigError("a data directory is required (--data-dir or data_dir in the file)")
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    notifications: NotificationService | None = None
    pruner: asyncio.Task[None] | None = None
    if events is not None:
        notifications = NotificationService(source=events, limits=config.notifications.limits)
        await notifications.start()
        pruner = asyncio.get_running_loop().create_task(
            prune_forever(events=events, settings=config.notifications)
        )
    core = build_core(
        backend=backend,
        esc_revision=esc_revision(),
        limits=config.limits,
        notifications=notifications,
        esc_sink=esc_sink,
        eo_sink=eo_sink,
    )
    server = NetconfSshServer(
        core=core,
        authenticator=authenticator or UserStore.in_dir(config.data_dir),
        host_key_path=config.data_dir / HOST_KEY_FILE,
        host=config.bind,
        port=config.port,
        throttle=throttle,
    )
    try:
        await server.start()
        yield server
    finally:
        server.close()
        await server.wait_closed()
        if pruner is not None:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
        if notifications is not None:
            await notifications.stop()


async def serve(*, config: DaemonConfig, backend: ConfigBackend | None = None) -> None:
    """Serve until SIGTERM or SIGINT.

    Without ``backend`` the SQL datastore of the data directory is opened and the whole
    daemon runs (VIM supervisor, lifecycle, notifications). A ``backend`` given in-process
    (tests) serves NETCONF only.
    """
    assert config.data_dir is not None
    store = build_backend(config.data_dir, config) if backend is None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parts: Parts | None = await start_parts(store, config) if store is not None else None
    served: ConfigBackend
    if store is not None:
        served = store
    elif backend is not None:
        served = backend
    async with run_server(
        config=config,
        backend=served,
        events=store.events if store is not None else None,
        esc_sink=parts.lifecycle.actions if parts is not None else None,
        eo_sink=parts.moves if parts is not None else None,
    ) as server:
        sd_notify(f"READY=1\nSTATUS=listening on {config.bind}:{server.port}")
        await stop.wait()
        log.info("stopping")
        sd_notify("STOPPING=1")
    if parts is not None:
        await parts.stop()
    if store is not None:
        store.close()
    log.info("stopped")


def _read_password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserStoreError("empty password on stdin")
    return password


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 2
    if args.data_dir is not None:
        config = replace(config, data_dir=args.data_dir)
    if args.bind is not None:
        config = replace(config, bind=args.bind)
    if args.port is not None:
        config = replace(config, port=args.port)
    if args.log_level is not None:
        config = replace(config, log_level=args.log_level)
    setup_logging(config.log_level)
    failpoints.configure_from_env()
    if config.data_dir is None:
        log.error("a data directory is required (--data-dir or data_dir in the config file)")
        return 2
    try:
        asyncio.run(serve(config=config))
    except (WiringError, ConfigError, OSError, failpoints.FailpointError) as exc:
        log.error("cannot serve", extra={"error": str(exc)})
        return 1
    return 0


def _cmd_useradd(args: argparse.Namespace) -> int:
    keys: tuple[str, ...] = ()
    if args.authorized_key is not None:
        lines = args.authorized_key.read_text(encoding="utf-8").splitlines()
        keys = tuple(line for line in lines if line.strip() and not line.startswith("#"))
    password = _read_password(args)
    UserStore.in_dir(args.data_dir).add(name=args.name, password=password, authorized_keys=keys)
    print(f"user {args.name} added")
    return 0


def _cmd_userdel(args: argparse.Namespace) -> int:
    UserStore.in_dir(args.data_dir).delete(name=args.name)
    print(f"user {args.name} deleted")
    return 0


def _cmd_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if password is None:
        raise UserStoreError("use --password-stdin to give the new password")
    UserStore.in_dir(args.data_dir).set_password(name=args.name, password=password)
    print(f"password of {args.name} changed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc-orchd", description="The esc-orch daemon.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the NETCONF server")
    p.add_argument("--data-dir", type=Path, help="state directory (users, host key, datastore)")
    p.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 830)")
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_cmd_serve)

    for name, func, text in (
        ("useradd", _cmd_useradd, "add a NETCONF user"),
        ("userdel", _cmd_userdel, "delete a NETCONF user"),
        ("passwd", _cmd_passwd, "change a user's password"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("name")
        if name != "userdel":
            p.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        if name == "useradd":
            p.add_argument(
                "--authorized-key", type=Path, help="file of OpenSSH public keys for this user"
            )
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UserStoreError, OSError) as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
