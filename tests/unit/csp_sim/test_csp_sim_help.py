"""``esc-csp-sim --help`` reads as text for people (it used to print the module's raw
reStructuredText docstring)."""

from __future__ import annotations

import argparse

import pytest

from esc_orch.csp_sim.cli import build_parser


def _helps() -> dict[str, str]:
    parser = build_parser()
    out = {"": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub.format_help()
    return out


@pytest.mark.parametrize("command", ["", "host", "cluster"])
def test_help_has_no_markup(command: str) -> None:
    text = _helps()[command]
    assert "``" not in text and ":class:" not in text and ":mod:" not in text


def test_cluster_help_lists_the_fault_commands_and_the_power_controller() -> None:
    text = _helps()["cluster"]
    for word in ("partition NAME", "resume NAME", "restart NAME", "kill NAME", "POST /power"):
        assert word in text
