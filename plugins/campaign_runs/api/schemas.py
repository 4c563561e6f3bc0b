"""Pydantic request and response models of the Campaign Runs JSON API (``api/``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaign_runs.api.from_dto import DtoModel, FromDto
from campaign_runs.core.dto import (
    ActionResult,
    AudienceView,
    CampaignDetail,
    CampaignSummary,
    ChannelProgress,
    EmailView,
    HistoryEntry,
    RunDetails,
    RunSchedule,
    RunView,
    TaskView,
    UpcomingRun,
    WorklistItem,
)
from campaign_runs.core.served_slot import ServedSlot
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
# The response models of campaigns, runs and work-list entries take their fields from the core's DTOs
# (``api.from_dto``): a body names only what the REST API adds, renames or narrows.


class CampaignOut(DtoModel, dto=CampaignSummary, omit=("timezone",)):
    """A campaign as listed."""

    id: FromDto = Field(validation_alias="dag_id", description="The campaign's id: its DAG id.")
    channels: FromDto = Field(description="Channels from the DAG's `channel:<name>` tags.")
    audience: FromDto = Field(description="The DAG's `audience:<segment>` tag; `sql` and `file` are real sources.")
    audience_label: FromDto = Field(
        description="Where recipients come from: `SQL query on Connection <id>`, `CSV file <url>`, or "
        "`demo audience (synthetic)` for generated recipients.",
    )
    dry_run: FromDto = Field(
        description="Every channel is a dry run (`delivery: dry_run`): the campaign sends nothing."
    )
    dry_run_channels: FromDto = Field(
        description="Channels that are dry runs (the DAG's `dry-run:<channel>` tags): their messages are written to "
        "a local file, nothing is sent.",
    )
    schedule: FromDto = Field(description="The timetable summary, e.g. a cron expression.")
    schedule_description: FromDto = Field(description="The schedule in plain words.")
    last_status: RunStatus | None
    active_runs: FromDto = Field(ge=0)
    open_worklist: FromDto = Field(ge=0, description="Open work-list entries of the campaign's runs.")
    failed_emails: FromDto = Field(ge=0, description="Emails of the campaign that failed for good.")


class CampaignCollection(BaseModel):
    """A page of campaigns the caller may read."""

    campaigns: list[CampaignOut]
    total_entries: int = Field(ge=0)


class CampaignDetailOut(CampaignOut, dto=(CampaignDetail, CampaignSummary), omit=("summary",)):
    """A campaign's About information."""

    params: FromDto

    @field_validator("params")
    @classmethod
    def _json_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The params as JSON values, whatever types the DAG gave them."""
        encoded: dict[str, Any] = jsonable_encoder(params)
        return encoded


# ---------------------------------------------------------------- runs


class SlotOut(DtoModel, dto=ServedSlot):
    """The slot a run serves: a restart serves the slot of the run it restarts, not the time it was restarted."""

    at: FromDto = Field(description="The slot's logical date, else when its first run was due.")


class RunOut(DtoModel, dto=RunView, omit=("dag_id", "emails", "messages")):
    """A run of a campaign as people see it."""

    status: RunStatus
    dag_run_state: FromDto = Field(description="Airflow's own DAG run state.")
    duration_seconds: FromDto
    tasks_total: FromDto = Field(ge=0)
    tasks_done: FromDto = Field(ge=0)
    progress_percent: FromDto = Field(ge=0, le=100)
    restart_of: FromDto = Field(description="The run this one restarted.")
    replaced_by: FromDto = Field(description="The run that restarted this one.")
    allowed_actions: FromDto = Field(description="Actions the run's status allows: stop, restart, skip.")
    slot: FromDto = Field(description="The slot the run serves (a restart: the slot of the run it restarts).")


class UpcomingRunOut(DtoModel, dto=UpcomingRun):
    """A slot of the campaign's timetable without a run yet."""

    status: RunStatus


class RunScheduleOut(DtoModel, dto=RunSchedule):
    """Upcoming slots (soonest first; page 1 only) and a page of past runs, newest first."""

    total_entries: FromDto = Field(validation_alias="total", ge=0, description="Past runs matching the filters.")
    page: FromDto = Field(ge=1)
    page_size: FromDto = Field(ge=1)
    pages: FromDto = Field(ge=1)


class ChannelProgressOut(DtoModel, dto=ChannelProgress):
    """Sending progress of one channel (XCom `campaign_progress` of task `send_<channel>`)."""

    in_doubt: FromDto = Field(
        description="Recipients an earlier run of the slot claimed but never confirmed; a restart resends them "
        "only when asked (`resend_in_doubt`).",
    )
    suppressed: FromDto = Field(
        description="Recipients on the suppression list when their message was due: not in total."
    )
    skipped: FromDto = Field(
        description="Rows of the run's audience snapshot this channel does not send to, by reason: no_id, "
        "invalid_address, no_address, no_consent, duplicate.",
    )
    percent: FromDto
    delivery: FromDto = Field(
        description="How the channel delivers, as the run froze it: its transport (`smtp`, `sns`...), `dry run`, or "
        "`<transport> (dry run)`; empty while a live channel's transport is not known (build_audience not done).",
    )
    dry_run: FromDto = Field(description="The channel is a dry run: nothing is sent.")


class AudienceOut(DtoModel, dto=AudienceView):
    """The run's audience, as its `build_audience` task returned it (XCom `return_value`), or why it failed."""

    source: FromDto = Field(description="sql, file or demo; null until build_audience has returned.")
    label: FromDto = Field(description="`SQL query on Connection <id>`, `CSV file <url>`, `demo audience (synthetic)`.")
    demo: FromDto = Field(validation_alias="is_demo", description="Whether the audience is the synthetic demo one.")
    recipients: FromDto = Field(description="Recipients in the run's audience (0: the snapshot is empty).")
    snapshot_rows: FromDto = Field(description="Rows of a real source's snapshot.")
    snapshot_seconds: FromDto = Field(description="Seconds writing the snapshot took.")
    snapshot_reused: FromDto = Field(description="The snapshot was written by the first run of this slot.")
    task_state: FromDto = Field(description="The state of the build_audience task.")
    error: FromDto = Field(
        description="When build_audience failed: `audience could not be read; see the build_audience log` (the "
        "message is in the task's log)."
    )
    log_path: FromDto = Field(description="The failed build_audience task, with its log, in Airflow's UI.")
    summary: FromDto = Field(validation_alias="line", description="The audience in one line, as the run page says it.")


class TaskOut(DtoModel, dto=TaskView):
    """One task instance of the run (one per mapped instance)."""


class HistoryEntryOut(DtoModel, dto=HistoryEntry):
    """One recorded action on the run."""


class EmailOut(DtoModel, dto=EmailView):
    """One email of the outbox: to whom, its status and how its attempts went."""

    kind: FromDto = Field(description="stopped, restarted or skipped.")
    status: FromDto = Field(description="pending, sent, failed or undeliverable.")
    attempts: FromDto = Field(ge=0)
    next_attempt_at: FromDto = Field(description="When a pending email is tried next.")


class RunDetailOut(RunOut, dto=(RunDetails, RunView), omit=("run", "campaign", "failures")):
    """A run with its audience, its progress per channel, its tasks and its history."""

    dag_id: FromDto
    dag_version: FromDto = Field(
        description="Airflow's DAG version number the run was created with (the definition it ran)."
    )
    dry_run_channels: FromDto = Field(
        description="The run's channels that are dry runs (nothing sent), as the run froze them."
    )
    audience: FromDto
    progress: FromDto = Field(validation_alias="channels")
    tasks: FromDto
    history: FromDto
    emails: FromDto = Field(description="Emails about the run, oldest first.")


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


class ActionResultOut(DtoModel, dto=ActionResult, omit=("outbox_ids",)):
    """What an action did; `replayed` is true when an earlier request with the same Idempotency-Key did it."""


class ReassignBody(BaseModel):
    """Body of Reassign."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=USERNAME_MAX, pattern=NO_NUL, description="Username of the new assignee.")
    note: str | None = Field(default=None, pattern=NO_NUL, description="Why (optional).")


# ---------------------------------------------------------------- work list


class WorklistItemOut(DtoModel, dto=WorklistItem):
    """A run assigned to a person."""


class WorklistOut(BaseModel):
    """Work-list entries, newest first."""

    items: list[WorklistItemOut]
    total_entries: int = Field(ge=0)
