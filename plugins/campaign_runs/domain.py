"""Run statuses, actions and the rules between them: pure Python, no Airflow import."""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any


class RunStatus(enum.StrEnum):
    """Status of a campaign run as people see it."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    COMPLETED = "completed"
    SKIPPED = "skipped"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.STOPPING)


class Action(enum.StrEnum):
    """What a person can do to a run, and what the plugin records when Airflow acted on it."""

    STOP = "stop"
    RESTART = "restart"
    SKIP = "skip"
    REASSIGN = "reassign"
    AIRFLOW_RERUN = "rerun_in_airflow"
    AIRFLOW_DELETE = "deleted_in_airflow"
    RESEND_EMAIL = "resend_email"


class RecordStatus(enum.StrEnum):
    """Statuses the plugin stores itself; Airflow has no such DagRun state."""

    STOPPING = "stopping"
    STOPPED = "stopped"
    SKIPPED = "skipped"


ALLOWED_FROM: dict[Action, frozenset[RunStatus]] = {
    Action.STOP: frozenset({RunStatus.QUEUED, RunStatus.RUNNING}),
    Action.RESTART: frozenset({RunStatus.FAILED, RunStatus.STOPPED}),
    Action.SKIP: frozenset({RunStatus.FAILED, RunStatus.STOPPED}),
}

RESULT_OF: dict[Action, RunStatus] = {
    Action.STOP: RunStatus.STOPPING,
    Action.RESTART: RunStatus.SKIPPED,
    Action.SKIP: RunStatus.SKIPPED,
}


def allowed_actions(status: RunStatus) -> list[Action]:
    """Actions a run in ``status`` allows, in display order."""
    return [action for action, statuses in ALLOWED_FROM.items() if status in statuses]


def record_belongs(
    record_dag_run: tuple[int | None, _dt.datetime | None], dag_run: tuple[int, _dt.datetime | None]
) -> bool:
    """Whether a record written for DagRun ``(id, created_at)`` describes this one, not a deleted namesake."""
    (record_id, record_created), (run_id, run_created) = record_dag_run, dag_run
    if record_id is None:
        return True  # written before records named their DagRun
    return record_id == run_id and (record_created is None or record_created == run_created)


def applied_record_status(
    record_status: str | None,
    record_clear_number: int | None,
    dag_run_clear_number: int,
    dag_run_state: str | None,
) -> str | None:
    """The record's status while it still holds, else None (the run shows Airflow's own state).

    The plugin leaves every run it stops or skips ``failed`` in Airflow. A clear in Airflow (which bumps
    the run's clear number) or any other state set there means someone acted in Airflow itself.
    """
    if record_status is None:
        return None
    if record_clear_number is not None and record_clear_number != dag_run_clear_number:
        return None
    return record_status if dag_run_state == "failed" else None


def derive_status(dag_run_state: str | None, record_status: str | None, unfinished_tasks: int) -> RunStatus:
    """Combine Airflow's DagRun state with the plugin's own record into the displayed status."""
    if record_status == RecordStatus.SKIPPED:
        return RunStatus.SKIPPED
    if record_status == RecordStatus.STOPPED:
        return RunStatus.STOPPED
    if record_status == RecordStatus.STOPPING:
        return RunStatus.STOPPING if unfinished_tasks else RunStatus.STOPPED
    return {
        "queued": RunStatus.QUEUED,
        "running": RunStatus.RUNNING,
        "success": RunStatus.COMPLETED,
        "failed": RunStatus.FAILED,
    }.get(dag_run_state or "", RunStatus.QUEUED)


class CampaignRunsError(Exception):
    """Base of every domain error; ``code`` names it for APIs and CLIs."""

    code = "error"


class NotFoundError(CampaignRunsError):
    """Unknown campaign, run, user or work-list entry."""

    code = "not_found"


class NotACampaignError(NotFoundError):
    """The DAG exists but is not a campaign."""

    code = "not_a_campaign"


class UnknownActionError(NotFoundError):
    """No such action."""

    code = "unknown_action"


class ActionNotAllowedError(CampaignRunsError):
    """The run's status does not allow the action."""

    code = "not_allowed"

    def __init__(self, action: Action, status: RunStatus) -> None:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_FROM.get(action, frozenset()))) or "no status"
        super().__init__(
            f"{action.value.capitalize()} is not allowed for a run that is {status.value}; "
            f"it is allowed when the run is {allowed}."
        )
        self.action = action
        self.status = status


class ConflictError(CampaignRunsError):
    """Someone else changed the run at the same time."""

    code = "conflict"


class InvalidNoteError(CampaignRunsError):
    """The note is empty where one is required, or too long."""

    code = "invalid_note"


class InvalidOptionError(CampaignRunsError):
    """An option the action does not take (``unpause`` on a Stop, say)."""

    code = "invalid_option"


class CampaignPausedError(CampaignRunsError):
    """Restart refused because the campaign's DAG is paused."""

    code = "paused"


class IdempotencyKeyReusedError(CampaignRunsError):
    """An Idempotency-Key sent again with another request (run, action or body) than the one it was first used with."""

    code = "idempotency_key_reused"


class NotPermittedError(CampaignRunsError):
    """The acting user may not do this (e.g. only work-list administrators may resend an email)."""

    code = "forbidden"


class CampaignActionNotAllowedError(CampaignRunsError):
    """The campaign's state does not allow the action (Pause a paused campaign, Stop all with no active run)."""

    code = "not_allowed"


class DefinitionInvalidError(CampaignRunsError):
    """A campaign definition that would not load: names the field (dotted) and what is wrong with it."""

    code = "invalid_definition"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class DefinitionErrors(DefinitionInvalidError):
    """Every error of a definition at once: ``errors`` as (field, message) pairs; the first is ``field``/``reason``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(*errors[0])
        self.errors = errors
        self.args = ("; ".join(f"{field}: {message}" if field else message for field, message in errors),)


class DefinitionConflictError(ConflictError):
    """Someone saved the campaign since the version this edit started from; ``changes`` is their diff.

    ``merged`` is their version with this edit's changes applied on top, field by field; ``conflicts`` the
    fields both changed (each a mapping: field, path, and the base's, their and your value as YAML).
    """

    code = "definition_conflict"

    def __init__(
        self,
        message: str,
        *,
        current_sha: str,
        changes: str,
        merged: str | None = None,
        conflicts: tuple[dict[str, Any], ...] = (),
    ) -> None:
        super().__init__(message)
        self.current_sha = current_sha
        self.changes = changes
        self.merged = merged
        self.conflicts = conflicts


def validate_note(note: str | None, *, required: bool, max_length: int) -> str:
    """Return the cleaned note or raise ``InvalidNoteError``."""
    cleaned = (note or "").replace("\r\n", "\n").strip()
    if "\x00" in cleaned:
        raise InvalidNoteError("The note contains a NUL character.")
    if required and not cleaned:
        raise InvalidNoteError("A note is required: say why you take this action.")
    if len(cleaned) > max_length:
        raise InvalidNoteError(
            f"The note is {len(cleaned)} characters long; the limit is {max_length}: shorten it by "
            f"{plural(len(cleaned) - max_length, 'character')} (a note is never cut). Nothing was changed."
        )
    return cleaned


def shorten(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its first ``limit - 1`` and an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "\u2026"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``, ``1,200 recipients``: a count with its noun, singular or plural (``many``)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def utcnow() -> _dt.datetime:
    """Aware UTC now, as Airflow stores times."""
    return _dt.datetime.now(_dt.UTC)


# The longest ids and usernames any edge accepts (Airflow's dag_id / run_id columns, its username column).
ID_MAX = 250
USERNAME_MAX = 256

# What the campaign factory writes about a run's audience (``build_audience``'s return value, progress XCom).
DEMO_AUDIENCE = "demo audience (synthetic)"
# A channel that sends nothing (``delivery: dry_run``), as the factory says it: its tags ``dry-run:<channel>``
# (and ``dry-run`` when every channel is one), its About, and the run's channels in build_audience's result.
DRY_RUN_LABEL = "dry run"
DRY_RUN_TAG = "dry-run"
# Why a row of a run's audience snapshot is not sent to on a channel, in the words run details use.
SKIP_REASONS = {
    "no_id": "no id",
    "invalid_address": "invalid address",
    "no_address": "no address",
    "no_consent": "no consent",
    "duplicate": "duplicate",
}


def skipped_text(skipped: dict[str, int] | None) -> str:
    """Skipped rows in words, known reasons first: ``3 (no consent: 2, invalid address: 1)``; ``0`` when none."""
    counts = {reason: count for reason, count in (skipped or {}).items() if count}
    if not counts:
        return "0"
    order = [*(r for r in SKIP_REASONS if r in counts), *sorted(set(counts) - set(SKIP_REASONS))]
    parts = ", ".join(f"{SKIP_REASONS.get(reason, reason)}: {counts[reason]:,}" for reason in order)
    return f"{sum(counts.values()):,} ({parts})"
