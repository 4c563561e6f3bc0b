"""Pydantic request and response models of the Campaign Runs JSON API (``api/``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from campaign_runs.domain import USERNAME_MAX, RunStatus

# Strings sent by clients must not contain NUL (PostgreSQL refuses it in text).
NO_NUL = r"^[^\x00]*$"


class ErrorCode(StrEnum):
    """Machine-readable ``code`` of an error response."""

    NOT_FOUND = "not_found"
    NOT_A_CAMPAIGN = "not_a_campaign"
    NOT_ALLOWED = "not_allowed"
    CONFLICT = "conflict"
    PAUSED = "paused"
    INVALID_NOTE = "invalid_note"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ERROR = "error"


class ErrorResponse(BaseModel):
    """Every error: a sentence for people and a code for programs."""

    detail: str = Field(description="What went wrong, in one sentence.")
    code: str = Field(
        default=ErrorCode.ERROR.value,
        description="Machine-readable error code, one of: "
        + ", ".join(c.value for c in ErrorCode)
        + ". Always sent by this API; optional in the schema because a request whose path the API server "
        "cannot route at all (e.g. a raw control character) gets the server's own 404 without it.",
    )


# ---------------------------------------------------------------- campaigns


class CampaignOut(BaseModel):
    """A campaign as listed."""

    id: str = Field(description="The campaign's id: its DAG id.")
    description: str
    owners: list[str]
    owner_emails: list[str]
    channels: list[str] = Field(description="Channels from the DAG's `channel:<name>` tags.")
    audience: str = Field(description="The DAG's `audience:<segment>` tag; `sql` and `file` are real sources.")
    audience_label: str = Field(
        default="",
        description="Where recipients come from: `SQL query on Connection <id>`, `CSV file <url>`, or "
        "`demo audience (synthetic)` for generated recipients.",
    )
    dry_run: bool = Field(
        default=False, description="Every channel is a dry run (`delivery: dry_run`): the campaign sends nothing."
    )
    dry_run_channels: list[str] = Field(
        default_factory=list,
        description="Channels that are dry runs (the DAG's `dry-run:<channel>` tags): their messages are written to "
        "a local file, nothing is sent.",
    )
    schedule: str | None = Field(description="The timetable summary, e.g. a cron expression.")
    schedule_description: str | None = Field(description="The schedule in plain words.")
    is_paused: bool
    next_run_after: datetime | None
    last_run_id: str | None
    last_status: RunStatus | None
    active_runs: int = Field(ge=0)
    open_worklist: int = Field(ge=0, description="Open work-list entries of the campaign's runs.")
    failed_emails: int = Field(default=0, ge=0, description="Emails of the campaign that failed for good.")


class CampaignCollection(BaseModel):
    """A page of campaigns the caller may read."""

    campaigns: list[CampaignOut]
    total_entries: int = Field(ge=0)


class CampaignDetailOut(CampaignOut):
    """A campaign's About information."""

    timezone: str
    doc_md: str | None
    params: dict[str, Any]
    tags: list[str]


# ---------------------------------------------------------------- runs


class SlotOut(BaseModel):
    """The slot a run serves: a restart serves the slot of the run it restarts, not the time it was restarted."""

    at: datetime | None = Field(description="The slot's logical date, else when its first run was due.")
    data_interval_start: datetime | None
    data_interval_end: datetime | None


class RunOut(BaseModel):
    """A run of a campaign as people see it."""

    run_id: str
    status: RunStatus
    dag_run_state: str | None = Field(description="Airflow's own DAG run state.")
    run_type: str | None
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration_seconds: float | None
    triggering_user: str | None
    note: str | None
    tasks_total: int = Field(ge=0)
    tasks_done: int = Field(ge=0)
    progress_percent: int = Field(ge=0, le=100)
    restart_of: str | None = Field(description="The run this one restarted.")
    replaced_by: str | None = Field(description="The run that restarted this one.")
    allowed_actions: list[str] = Field(description="Actions the run's status allows: stop, restart, skip.")
    slot: SlotOut = Field(description="The slot the run serves (a restart: the slot of the run it restarts).")


class UpcomingRunOut(BaseModel):
    """A slot of the campaign's timetable without a run yet."""

    status: RunStatus = RunStatus.SCHEDULED
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime


class RunScheduleOut(BaseModel):
    """Upcoming slots (soonest first; page 1 only) and a page of past runs, newest first."""

    dag_id: str
    upcoming: list[UpcomingRunOut]
    runs: list[RunOut]
    total_entries: int = Field(ge=0, description="Past runs matching the filters.")
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    pages: int = Field(ge=1)


class ChannelProgressOut(BaseModel):
    """Sending progress of one channel (XCom `campaign_progress` of task `send_<channel>`)."""

    channel: str
    task_id: str
    task_state: str | None
    total: int | None
    sent: int | None
    failed: int | None
    in_doubt: int | None = Field(
        default=None,
        description="Recipients an earlier run of the slot claimed but never confirmed; a restart resends them "
        "only when asked (`resend_in_doubt`).",
    )
    suppressed: int | None = Field(
        default=None, description="Recipients on the suppression list when their message was due: not in total."
    )
    skipped: dict[str, int] | None = Field(
        default=None,
        description="Rows of the run's audience snapshot this channel does not send to, by reason: no_id, "
        "invalid_address, no_address, no_consent, duplicate.",
    )
    percent: int | None
    delivery: str = Field(
        default="",
        description="How the channel delivers, as the run froze it: its transport (`smtp`, `sns`...), `dry run`, or "
        "`<transport> (dry run)`; empty while a live channel's transport is not known (build_audience not done).",
    )
    dry_run: bool = Field(default=False, description="The channel is a dry run: nothing is sent.")


class AudienceOut(BaseModel):
    """The run's audience, as its `build_audience` task returned it (XCom `return_value`), or why it failed."""

    source: str | None = Field(description="sql, file or demo; null until build_audience has returned.")
    label: str = Field(description="`SQL query on Connection <id>`, `CSV file <url>`, `demo audience (synthetic)`.")
    demo: bool = Field(description="Whether the audience is the synthetic demo one.")
    recipients: int | None = Field(description="Recipients in the run's audience (0: the snapshot is empty).")
    snapshot_rows: int | None = Field(description="Rows of a real source's snapshot.")
    snapshot_seconds: float | None = Field(description="Seconds writing the snapshot took.")
    snapshot_reused: bool = Field(description="The snapshot was written by the first run of this slot.")
    task_state: str | None = Field(description="The state of the build_audience task.")
    error: str | None = Field(
        description="When build_audience failed: `audience could not be read; see the build_audience log` (the "
        "message is in the task's log)."
    )
    log_path: str | None = Field(description="The failed build_audience task, with its log, in Airflow's UI.")
    summary: str = Field(description="The audience in one line, as the run page says it.")


class TaskOut(BaseModel):
    """One task instance of the run (one per mapped instance)."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    start_date: datetime | None
    end_date: datetime | None
    duration_seconds: float | None
    operator: str | None


class HistoryEntryOut(BaseModel):
    """One recorded action on the run."""

    id: int
    action: str
    actor: str
    note: str
    status_before: str
    status_after: str
    new_run_id: str | None
    created_at: datetime


class EmailOut(BaseModel):
    """One email of the outbox: to whom, its status and how its attempts went."""

    id: int
    dag_id: str
    run_id: str
    kind: str = Field(description="stopped, restarted or skipped.")
    username: str
    recipient: str | None
    subject: str
    status: str = Field(description="pending, sent, failed or undeliverable.")
    attempts: int = Field(ge=0)
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending email is tried next.")


class RunDetailOut(RunOut):
    """A run with its audience, its progress per channel, its tasks and its history."""

    dag_id: str
    dag_version: int | None = Field(
        default=None, description="Airflow's DAG version number the run was created with (the definition it ran)."
    )
    dry_run_channels: list[str] = Field(
        default_factory=list, description="The run's channels that are dry runs (nothing sent), as the run froze them."
    )
    audience: AudienceOut
    progress: list[ChannelProgressOut]
    tasks: list[TaskOut]
    history: list[HistoryEntryOut]
    emails: list[EmailOut] = Field(default_factory=list, description="Emails about the run, oldest first.")


# ---------------------------------------------------------------- actions


class ActionBody(BaseModel):
    """Body of Stop / Restart / Skip."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None,
        pattern=NO_NUL,
        description="Why you take this action (required unless [campaign_runs] note_required is off).",
    )
    unpause: bool = Field(
        default=False, description="Restart only: unpause a paused campaign so that the new run starts."
    )
    resend_in_doubt: bool = Field(
        default=False,
        description="Restart only: send once more to the recipients in doubt (claimed by an earlier run of the "
        "slot, never confirmed). Off by default: someone in doubt may have received the message.",
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="Restart only: params overrides, validated against the campaign's params; otherwise the new "
        "run uses the campaign's current configuration.",
    )


class ActionResultOut(BaseModel):
    """What an action did; `replayed` is true when an earlier request with the same Idempotency-Key did it."""

    action_id: int
    action: str
    dag_id: str
    run_id: str
    actor: str
    status_before: str
    status_after: str
    new_run_id: str | None
    replayed: bool


class ReassignBody(BaseModel):
    """Body of Reassign."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=USERNAME_MAX, pattern=NO_NUL, description="Username of the new assignee.")
    note: str | None = Field(default=None, pattern=NO_NUL, description="Why (optional).")


# ---------------------------------------------------------------- work list


class WorklistItemOut(BaseModel):
    """A run assigned to a person."""

    id: int
    dag_id: str
    run_id: str
    assignee: str
    reason: str
    note: str
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class WorklistOut(BaseModel):
    """Work-list entries, newest first."""

    items: list[WorklistItemOut]
    total_entries: int = Field(ge=0)
