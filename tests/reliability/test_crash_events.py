"""Events after a crash (issue 14, defect 6): each case kills the real daemon at a failpoint.

Every case is one trial of :mod:`reliability.crashkit`: a clean daemon prepares deployment
``dep``, a daemon armed with ``ESC_ORCH_FAILPOINTS`` is sent the operation and SIGKILLs itself
at the named point, a clean daemon restarts; then the durable event log must hold each event
of the operation exactly once with the type it has without a crash, the hosts exactly one VM
(powered as wanted, no orphan disk) and opdata the desired state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reliability import crashkit
from reliability.crashkit import run_trial


def _holds(root: Path, operation: str, point: str, again: str | None = None) -> None:
    result = run_trial(root, operation, point, again=again)
    assert result.fired, f"failpoint {point} was not reached by {operation}"
    assert result.problems == [], (operation, point, result.problems)


@pytest.mark.parametrize(
    "operation", ["undeploy", "vmAction-STOP", "serviceAction-STOP", "vmAction-REBOOT"]
)
def test_killed_after_the_intent_before_the_vim_call_the_vm_event_is_logged_once(
    tmp_path: Path, operation: str
) -> None:
    """Delete / power-off intent durable, VIM not called: one VM_UNDEPLOYED / VM_STOPPED."""
    _holds(tmp_path, operation, "lifecycle.after-intent=kill@1")


def test_killed_right_after_an_update_no_vm_sees_service_updated_is_still_sent(
    tmp_path: Path,
) -> None:
    """recovery_wait_time 60->61 committed, killed before any run: SERVICE_UPDATED once."""
    _holds(tmp_path, "update-no-vm-change", "datastore.after-commit=kill@1")


@pytest.mark.parametrize("operation", ["update-flavor", "update-interface", "update-image"])
def test_killed_between_delete_and_recreate_reports_vm_updated_with_its_type(
    tmp_path: Path, operation: str
) -> None:
    """The VM deleted, not re-created yet: VM_UPDATED with its update type, not VM_DEPLOYED."""
    _holds(tmp_path, operation, "lifecycle.between-calls=kill@2")


@pytest.mark.parametrize(
    ("operation", "point"),
    [
        ("vmAction-STOP", "lifecycle.before-outcome=kill@1"),
        ("vmAction-START", "actions.after-accept=kill@1"),
    ],
)
def test_a_vm_action_killed_mid_run_sends_no_service_event(
    tmp_path: Path, operation: str, point: str
) -> None:
    """A vmAction's run is quiet, also when a restart finishes it: no SERVICE_UPDATED."""
    _holds(tmp_path, operation, point)


@pytest.mark.parametrize("operation", ["deploy", "vmAction-STOP"])
def test_killed_again_right_after_the_restart_the_owed_vm_event_is_not_lost(
    tmp_path: Path, operation: str
) -> None:
    """VIM call done, outcome not durable; the restart closes the intent and dies again."""
    _holds(
        tmp_path,
        operation,
        "lifecycle.before-outcome=kill@1",
        again="lifecycle.after-outcome=kill@1",
    )


@pytest.mark.parametrize(
    "operation", ["deploy", "update-locator", "update-flavor", "undeploy", "vmAction-STOP"]
)
def test_killed_before_the_group_commit_of_a_published_event_nothing_is_lost(
    tmp_path: Path, operation: str
) -> None:
    """The reactor published the event and went on (it does not wait for its commit); the
    process dies before the batch holding it commits: the event, its held outcome and its
    record are lost together, the step's intent is still open, and the restart logs every
    event of the operation exactly once. Only the first such batch: how the later events
    group into batches depends on timing, so a later N may not exist."""
    _holds(tmp_path, operation, "lifecycle.before-commit=kill@1")


@pytest.mark.parametrize("operation", ["deploy", "update-locator"])
def test_an_edit_acknowledged_before_the_lifecycle_learned_of_it_is_run_after_a_crash(
    tmp_path: Path, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon answers an edit before its diff reaches the lifecycle (deferred
    publication, store/datastore_publish.py) and is killed as the diff is handed over: the
    edit was acknowledged, the lifecycle never ran it; the restart runs it, events once."""
    acknowledged: list[str] = []
    base = crashkit.OPERATIONS[operation]

    def act(trial: crashkit.Trial) -> None:
        base.act(trial)  # raises unless the daemon answered <ok/>
        acknowledged.append(operation)

    monkeypatch.setitem(crashkit.OPERATIONS, operation, dataclasses.replace(base, act=act))
    _holds(tmp_path, operation, "datastore.after-commit=kill@1")
    assert acknowledged == [operation]
