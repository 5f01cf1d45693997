"""Rule actions as ESC writes them (``"ALWAYS log"``, ``"FALSE recover autohealing"``...), parsed.

An action is ``<EDGE> <what>``: the edge is TRUE, FALSE or ALWAYS; ``what`` is ``log``,
``recover autohealing``, ESC's built-in ``esc_vm_alive_notification``, or one word naming a
script of the configured scripts directory. Anything else with several words (``scale out``...)
is accepted and reported as unsupported when it fires. What the text alone can refuse — no
edge, an unknown edge, nothing after it, a script name that is a path — is refused at edit
time by :func:`check_actions` (a :class:`RuleSyntaxError` with the action's text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from esc_orch.monitor.types import Edge, RuleAction, RuleActionKind

#: A script is named by one word; it may not leave the scripts directory.
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_BUILTINS = {
    ("log",): RuleActionKind.LOG,
    ("recover", "autohealing"): RuleActionKind.RECOVER,
    ("esc_vm_alive_notification",): RuleActionKind.ALIVE_NOTIFICATION,
}


class RuleSyntaxError(ValueError):
    """A rule action the configuration alone shows to be wrong."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"rule action {text!r}: {problem}")
        self.text = text
        self.problem = problem


def parse_action(text: str) -> RuleAction:
    words = text.split()
    if not words:
        raise RuleSyntaxError(text, "is empty")
    try:
        edge = Edge(words[0].upper())
    except ValueError:
        raise RuleSyntaxError(
            text, f"must start with TRUE, FALSE or ALWAYS, not {words[0]!r}"
        ) from None
    rest = tuple(words[1:])
    if not rest:
        raise RuleSyntaxError(text, f"names no action after {words[0]}")
    lowered = tuple(w.lower() for w in rest)
    kind = _BUILTINS.get(lowered)
    if kind is not None:
        return RuleAction(edge=edge, kind=kind, text=text)
    if len(rest) == 1:
        if not _SCRIPT_NAME.match(rest[0]) or ".." in rest[0]:
            raise RuleSyntaxError(text, f"{rest[0]!r} is not a script name (no paths)")
        return RuleAction(edge=edge, kind=RuleActionKind.SCRIPT, argument=rest[0], text=text)
    return RuleAction(
        edge=edge, kind=RuleActionKind.UNSUPPORTED, argument=" ".join(rest), text=text
    )


def check_actions(
    actions: Iterable[str], *, known_scripts: frozenset[str] | None = None
) -> list[RuleSyntaxError]:
    """Every problem of a rule's actions (empty: all accepted).

    With ``known_scripts`` (see :func:`esc_orch.monitor.scripts.known_rule_scripts`) a script
    that is not in the scripts directory is refused too.
    """
    problems: list[RuleSyntaxError] = []
    for text in actions:
        try:
            action = parse_action(text)
        except RuleSyntaxError as exc:
            problems.append(exc)
            continue
        if (
            known_scripts is not None
            and action.kind is RuleActionKind.SCRIPT
            and action.argument not in known_scripts
        ):
            shown = ", ".join(sorted(known_scripts)) or "none configured"
            problems.append(
                RuleSyntaxError(
                    text, f"no script {action.argument!r} in the scripts directory ({shown})"
                )
            )
    return problems
