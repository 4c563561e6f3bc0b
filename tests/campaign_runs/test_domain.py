"""Statuses and transitions: pure rules."""

from __future__ import annotations

import pytest
from campaign_runs.domain import (
    Action,
    ActionNotAllowedError,
    InvalidNoteError,
    RunStatus,
    allowed_actions,
    derive_status,
    validate_note,
)


@pytest.mark.parametrize(
    ("dag_run_state", "record", "running", "expected"),
    [
        ("queued", None, 0, RunStatus.QUEUED),
        ("running", None, 1, RunStatus.RUNNING),
        ("success", None, 0, RunStatus.COMPLETED),
        ("failed", None, 0, RunStatus.FAILED),
        ("failed", "stopping", 1, RunStatus.STOPPING),
        ("failed", "stopping", 0, RunStatus.STOPPED),
        ("failed", "stopped", 0, RunStatus.STOPPED),
        ("failed", "skipped", 0, RunStatus.SKIPPED),
        ("success", "skipped", 0, RunStatus.SKIPPED),
        ("running", None, 0, RunStatus.RUNNING),
    ],
)
def test_derive_status(dag_run_state: str, record: str | None, running: int, expected: RunStatus) -> None:
    assert derive_status(dag_run_state, record, running) is expected


def test_allowed_actions() -> None:
    assert allowed_actions(RunStatus.RUNNING) == [Action.STOP]
    assert allowed_actions(RunStatus.QUEUED) == [Action.STOP]
    assert allowed_actions(RunStatus.FAILED) == [Action.RESTART, Action.SKIP]
    assert allowed_actions(RunStatus.STOPPED) == [Action.RESTART, Action.SKIP]
    for status in (RunStatus.STOPPING, RunStatus.COMPLETED, RunStatus.SKIPPED, RunStatus.SCHEDULED):
        assert allowed_actions(status) == []


def test_not_allowed_message_names_the_allowed_statuses() -> None:
    error = ActionNotAllowedError(Action.SKIP, RunStatus.RUNNING)
    assert str(error) == "Skip is not allowed for a run that is running; it is allowed when the run is failed, stopped."


def test_validate_note() -> None:
    assert validate_note("  reason \r\n", required=True, max_length=10) == "reason"
    assert validate_note(None, required=False, max_length=10) == ""
    with pytest.raises(InvalidNoteError, match="required"):
        validate_note(" ", required=True, max_length=10)
    with pytest.raises(InvalidNoteError, match="11 characters long; the limit is 10"):
        validate_note("x" * 11, required=True, max_length=10)
