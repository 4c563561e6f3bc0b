"""What the core returns: frozen dataclasses, the same for the pages, the REST API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaign_runs.domain import RunStatus, utcnow


@dataclass(frozen=True)
class CampaignSummary:
    """One campaign as listed."""

    dag_id: str
    description: str
    owners: list[str]
    owner_emails: list[str]
    channels: list[str]
    audience: str
    schedule: str | None
    schedule_description: str | None
    is_paused: bool
    next_run_after: datetime | None
    last_run_id: str | None
    last_status: str | None
    active_runs: int
    open_worklist: int
    failed_emails: int = 0


@dataclass(frozen=True)
class CampaignDetail:
    """A campaign's About section."""

    summary: CampaignSummary
    timezone: str
    doc_md: str | None
    params: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True)
class EmailView:
    """One email of the outbox: to whom, its status and how its attempts went."""

    id: int
    dag_id: str
    run_id: str
    kind: str
    username: str
    recipient: str | None
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None

    @property
    def resendable(self) -> bool:
        """Whether an administrator may resend it (failed or undeliverable)."""
        return self.status in ("failed", "undeliverable")


@dataclass(frozen=True)
class RunView:
    """One run of a campaign as people see it."""

    dag_id: str
    run_id: str
    status: str
    dag_run_state: str | None
    run_type: str | None
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    triggering_user: str | None
    note: str | None
    tasks_total: int
    tasks_done: int
    restart_of: str | None
    replaced_by: str | None
    allowed_actions: list[str]
    # The run's emails: filled for run details only (empty in lists).
    emails: list[EmailView] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (to now while it runs)."""
        if self.start_date is None:
            return None
        end = self.end_date or utcnow()
        return max(0.0, (end - self.start_date).total_seconds())

    @property
    def progress_percent(self) -> int:
        """Finished task instances, in percent."""
        return int(100 * self.tasks_done / self.tasks_total) if self.tasks_total else 0

    @property
    def is_active(self) -> bool:
        """Whether the run is queued, running or stopping."""
        return RunStatus(self.status).is_active


@dataclass(frozen=True)
class UpcomingRun:
    """A slot of the timetable that has no run yet."""

    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime
    status: str = RunStatus.SCHEDULED.value


@dataclass(frozen=True)
class RunSchedule:
    """A campaign's run schedule: upcoming slots first, then a page of past runs, newest first."""

    dag_id: str
    upcoming: list[UpcomingRun]
    runs: list[RunView]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """Pages of past runs (at least one)."""
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class CampaignDisplay:
    """What the campaign display shows: About and the run schedule, read in one session."""

    campaign: CampaignDetail
    schedule: RunSchedule


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded action."""

    id: int
    action: str
    actor: str
    note: str
    status_before: str
    status_after: str
    new_run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ChannelProgress:
    """How far one channel of a run has got; counts are None until its task has reported."""

    channel: str
    task_id: str
    task_state: str | None
    total: int | None
    sent: int | None
    failed: int | None
    in_doubt: int | None = None  # recipients claimed by an earlier run and never confirmed: not resent

    @property
    def reported(self) -> bool:
        """Whether the channel's task has published progress."""
        return self.total is not None

    @property
    def percent(self) -> int | None:
        """Messages handled of this channel, in percent (None before the first report)."""
        if not self.total:
            return None
        return min(100, int(100 * ((self.sent or 0) + (self.failed or 0)) / self.total))


@dataclass(frozen=True)
class TaskView:
    """One task instance of a run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    start_date: datetime | None
    end_date: datetime | None
    duration_seconds: float | None
    operator: str | None


@dataclass(frozen=True)
class RunDetails:
    """A run with its progress per channel, its tasks and its history: one builder for every edge."""

    run: RunView
    campaign: CampaignSummary
    channels: list[ChannelProgress]
    tasks: list[TaskView]
    history: list[HistoryEntry]
    failures: dict[str, str]
    dag_version: int | None = None  # Airflow's DagVersion.version_number the run was created with

    @property
    def overall_percent(self) -> int:
        """Messages handled of all reporting channels, in percent (task progress before any report)."""
        total = sum(c.total or 0 for c in self.channels)
        if not total:
            return self.run.progress_percent
        return min(100, int(100 * sum((c.sent or 0) + (c.failed or 0) for c in self.channels) / total))


@dataclass(frozen=True)
class ActionResult:
    """What an action did."""

    action_id: int
    action: str
    dag_id: str
    run_id: str
    actor: str
    status_before: str
    status_after: str
    new_run_id: str | None = None
    outbox_ids: list[int] = field(default_factory=list)
    replayed: bool = False


@dataclass(frozen=True)
class WorklistItem:
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
