"""esc_nc_cli's help (defaults, valid values) and where it finds credentials."""

from __future__ import annotations

import argparse
import io

import pytest

from esc_orch.cli.main import MissingCredentials, build_parser, credentials
from esc_orch.cli.notif import subscribed_text


def _help(*command: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])


def test_help_shows_defaults_and_valid_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside the phrases looked for
    _help()
    top = capsys.readouterr().out
    assert "(default: 127.0.0.1)" in top and "(default: 830)" in top
    assert "(default: 30.0)" in top and "(default: $ESC_NC_USER)" in top
    assert "(default: None)" not in top
    _help("recovery-vm-action")
    assert "one of DO" in capsys.readouterr().out
    _help("vm-action")
    assert "START, STOP, REBOOT, ENABLE_MONITOR, DISABLE_MONITOR" in capsys.readouterr().out
    _help("edit-config")
    text = capsys.readouterr().out
    assert "{running,candidate}" in text and "(default: running)" in text
    _help("notif")
    text = capsys.readouterr().out
    assert "{escEvent,NETCONF}" in text and "(default: escEvent)" in text


class _Tty(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _args(**given: str | None) -> argparse.Namespace:
    return argparse.Namespace(
        user=given.get("user"), password=given.get("password"), host="h", port=830
    )


def test_credentials_come_from_options_then_environment_then_a_prompt() -> None:
    def never(_text: str) -> str:
        raise AssertionError("prompted")

    env = {"ESC_NC_USER": "env-user", "ESC_NC_PASSWORD": "env-pw"}
    assert credentials(_args(user="u", password="p"), environ=env, prompt=never) == ("u", "p")
    assert credentials(_args(), environ=env, prompt=never) == ("env-user", "env-pw")
    asked: list[str] = []

    def answer(text: str) -> str:
        asked.append(text)
        return "typed"

    got = credentials(_args(user="u"), environ={}, stdin=_Tty(True), prompt=answer)
    assert got == ("u", "typed") and asked == ["password of u@h:830: "]
    with pytest.raises(MissingCredentials, match="run esc_nc_cli from a terminal"):
        credentials(_args(user="u"), environ={}, stdin=_Tty(False), prompt=never)
    with pytest.raises(MissingCredentials, match="--user or \\$ESC_NC_USER"):
        credentials(_args(password="p"), environ={}, prompt=never)


def test_subscribed_line_says_what_is_replayed() -> None:
    live = subscribed_text(stream="escEvent", since=None, until=None, path=None)
    assert live == "esc_nc_cli: subscribed to escEvent (live events only); Ctrl-C to stop"
    t0, t1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
    text = subscribed_text(stream="NETCONF", since=t0, until=None, path="escEvent")
    assert f"(replaying from {t0}, then live, filter escEvent)" in text
    text = subscribed_text(stream="escEvent", since=t0, until=t1, path=None)
    assert f"(replaying from {t0} until {t1})" in text
