"""``esc-orchd``: run the NETCONF daemon (``serve``) and manage its users.

``serve`` logs to stderr in a readable ``key=value`` form (journald keeps it), tells systemd
when it is ready and when it stops, and stops cleanly on SIGTERM/SIGINT (exit 0). The
in-process :func:`run_server` is what the functional tests use, with their own backend.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from esc_orch import failpoints
from esc_orch.daemon import dbcmd
from esc_orch.daemon.config import ConfigError, DaemonConfig, LogFormat, load_config
from esc_orch.daemon.metrics_http import (
    instrument_store,
    set_build_info,
    start_metrics_server,
)
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
from esc_orch.store.migrate import SchemaError

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


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the extras."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in line:
                line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, log_format: LogFormat = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler(sys.stderr)
    json_lines = log_format is LogFormat.JSON
    handler.setFormatter(JsonLinesFormatter() if json_lines else KeyValueFormatter())
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


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard limit (Python keeps the soft one,
    often 1024); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def secure_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` 0700, or tighten it and its files (0700 / 0600) if an operator or
    an older version left them readable by others."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (data_dir, *data_dir.iterdir()):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        os.chmod(path, wanted)
        log.warning("permissions tightened", extra={"path": str(path), "mode": oct(wanted)})


async def serve(
    *, config: DaemonConfig, backend: ConfigBackend | None = None, drive_vims: bool = True
) -> None:
    """Serve until SIGTERM or SIGINT.

    Without ``backend`` the SQL datastore of the data directory is opened and the whole
    daemon runs (VIM supervisor, lifecycle, notifications). A ``backend`` given in-process
    (tests) serves NETCONF only. Without ``drive_vims`` the configuration is served and
    validated but no lifecycle runs (benchmarks of the NETCONF path, a standby).
    """
    assert config.data_dir is not None
    secure_data_dir(config.data_dir)
    log.info("open file limit", extra={"nofile": raise_fd_limit()})
    store = build_backend(config.data_dir, config) if backend is None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    set_build_info()
    if store is not None:
        instrument_store(store)
    metrics_server = await start_metrics_server(config.metrics)
    parts: Parts | None = (
        await start_parts(store, config) if store is not None and drive_vims else None
    )
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
    if metrics_server is not None:
        await metrics_server.stop()
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
    if args.log_format is not None:
        config = replace(config, log_format=LogFormat(args.log_format))
    if args.metrics_port is not None:
        config = replace(config, metrics=replace(config.metrics, port=args.metrics_port))
    setup_logging(config.log_level, config.log_format)
    failpoints.configure_from_env()
    if config.data_dir is None:
        log.error("a data directory is required (--data-dir or data_dir in the config file)")
        return 2
    try:
        asyncio.run(serve(config=config, drive_vims=not args.no_lifecycle))
    except SchemaError as exc:
        command = f"esc-orchd db upgrade --data-dir {config.data_dir}"
        if args.config is not None:
            command += f" --config {args.config}"
        log.error("cannot serve", extra={"error": str(exc), "run": command})
        return 1
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


def _cmd_rotate_key(args: argparse.Namespace) -> int:
    """A new secrets key; every VIM secret in the store re-encrypted (daemon stopped)."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 2
    # Imported here, as in wiring: only this command and serve need the store.
    from esc_orch.store.rotation import rotate_key  # noqa: PLC0415
    from esc_orch.store.tables import sqlite_url  # noqa: PLC0415

    url = str(config.store.get("url") or sqlite_url(args.data_dir))
    key_file = Path(str(config.store.get("key_file") or args.data_dir / "secrets.key"))
    done = rotate_key(url=url, key_file=key_file)
    print(
        f"new key in {key_file}; {done.rows} rows re-encrypted; {done.retired} old key(s) retired"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc-orchd", description="The esc-orch daemon.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run the NETCONF server",
        description="Run the NETCONF server. Options override the configuration file.",
    )
    p.add_argument("--data-dir", type=Path, help="state directory (users, host key, datastore)")
    p.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 830)")
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="(default info)"
    )
    p.add_argument(
        "--log-format",
        choices=[str(f) for f in LogFormat],
        help="text: key=value lines; json: one JSON object per line (default text)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics at http://BIND:PORT/metrics, BIND from [metrics] bind "
        "(default 127.0.0.1); off by default",
    )
    p.add_argument(
        "--no-lifecycle",
        action="store_true",
        help="serve the configuration without driving VIMs (no deploys; for benchmarks)",
    )
    p.set_defaults(func=_cmd_serve)

    dbcmd.add_parser(sub)

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

    p = sub.add_parser("rotate-key", help="new secrets key, re-encrypt stored VIM secrets")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--config", type=Path, help="TOML configuration file ([store] url, key_file)")
    p.set_defaults(func=_cmd_rotate_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever the caller's umask: the data directory 0700, every file in it 0600 (SQLite
    # creates its WAL and SHM files with the database's mode).
    os.umask(0o077)
    try:
        return int(args.func(args))
    except (UserStoreError, OSError) as exc:
        print(f"esc-orchd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
