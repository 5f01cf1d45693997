"""Each lifecycle step, retry and wait is logged at INFO with deployment, VM and connector."""

from __future__ import annotations

import logging

import pytest

from esc_orch.vim.errors import TemporaryVimError
from unit.reactor.harness import Lab, target
from unit.reconcile.builders import seed_deployment, with_locator

DEP = seed_deployment()


def _fields(record: logging.LogRecord) -> tuple[str, str, str]:
    return (
        getattr(record, "deployment", ""),
        getattr(record, "vm", ""),
        getattr(record, "connector", ""),
    )


async def test_steps_retries_and_waits_are_logged_with_their_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="esc_orch.reactor")
    lab = Lab()
    lab.hosts["csp-1"].fail_next("ensure_vm", TemporaryVimError("503"), times=1)
    assert (await lab.reactor().run(target(DEP))).ok
    (name,) = lab.vms("csp-1")
    steps = [r for r in caplog.records if r.getMessage() == "step CreateVm"]
    assert [(r.levelno, *_fields(r)) for r in steps] == [
        (logging.INFO, "name1/dep", name, "CSP-1")
    ]
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying creating")]
    assert len(retries) == 1 and retries[0].levelno == logging.INFO
    assert getattr(retries[0], "connector", None) == "CSP-1"

    caplog.clear()
    lab.hosts["csp-2"].down = True
    outcome = await lab.reactor(uuid_start=3000).run(target(with_locator(DEP, "CSP-2")))
    assert not outcome.ok
    waits = [r for r in caplog.records if r.getMessage().startswith("waiting ")]
    assert waits and all(r.levelno == logging.INFO for r in waits)
    assert _fields(waits[0])[0] == "name1/dep" and _fields(waits[0])[2] == "CSP-2"
