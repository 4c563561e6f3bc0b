"""What the core returns: frozen dataclasses, the same for the pages, the REST API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaign_runs.core.served_slot import ServedSlot
from campaign_runs.domain import DEMO_AUDIENCE, DRY_RUN_LABEL, RunStatus, skipped_text, utcnow

# What run details say when ``build_audience`` failed and its message was not read (its log says why).
AUDIENCE_UNREAD = "audience could not be read; see the build_audience log"


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
    # "SQL query on Connection crm", "CSV file s3://..." or DEMO_AUDIENCE (``core.audience_info.campaign_label``).
    audience_label: str = ""
    # Channels that send nothing (``delivery: dry_run``), from the DAG's ``dry-run`` tags.
    dry_run_channels: list[str] = field(default_factory=list)
    # The IANA zone its schedule runs in, from its latest serialized version (empty when none is serialized yet).
    timezone: str = ""

    @property
    def dry_run(self) -> bool:
        """Whether no channel of the campaign sends anything."""
        return bool(self.dry_run_channels) and set(self.channels) <= set(self.dry_run_channels)

    @property
    def dry_run_text(self) -> str:
        """``dry run`` (every channel), ``dry run: sms, push`` (some), or empty when every channel is live."""
        if not self.dry_run_channels:
            return ""
        return DRY_RUN_LABEL if self.dry_run else f"{DRY_RUN_LABEL}: {', '.join(self.dry_run_channels)}"

    @property
    def audience_is_demo(self) -> bool:
        """Whether the campaign sends to the synthetic demo audience."""
        return self.audience_label == DEMO_AUDIENCE

    @property
    def audience_text(self) -> str:
        """The audience as the pages list it: its label, with the segment of a demo audience."""
        if self.audience_is_demo and self.audience:
            return f"{DEMO_AUDIENCE}, segment {self.audience}"
        return self.audience_label or self.audience


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
class MessageProgress:
    """A run's messages over all its channels as they last reported; ``total`` is None before any report."""

    total: int | None = None
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0

    @classmethod
    def of(cls, channels: list[ChannelProgress]) -> MessageProgress:
        """The sums of the channels that have reported."""
        reported = [c for c in channels if c.reported]
        if not reported:
            return cls()
        numbers = {key: sum(getattr(c, key) or 0 for c in reported) for key in ("total", "sent", "failed", "in_doubt")}
        return cls(**numbers)

    @property
    def percent(self) -> int:
        """Messages handled (sent or failed) of the total, in percent; 0 before any report or without recipients."""
        return min(100, int(100 * (self.sent + self.failed) / self.total)) if self.total else 0

    @property
    def text(self) -> str:
        """``182 of 300 sent, 3 failed, 2 in doubt`` (zero counts left out); ``not reported`` before any report."""
        if self.total is None:
            return "not reported"
        if not self.total:
            return "no recipients"
        extra = [f"{n:,} {what}" for n, what in ((self.failed, "failed"), (self.in_doubt, "in doubt")) if n]
        return ", ".join([f"{self.sent:,} of {self.total:,} sent", *extra])


@dataclass(frozen=True)
class RunView:
    """One run of a campaign as people see it."""

    dag_id: str
    run_id: str
    status: str
    dag_run_state: str | None
    run_type: str | None
    logical_date: datetime | None
    run_after: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    triggering_user: str | None
    tasks_done: int
    tasks_total: int
    note: str | None
    restart_of: str | None
    replaced_by: str | None
    allowed_actions: list[str]
    # The run's emails: filled for run details only (empty in lists).
    emails: list[EmailView] = field(default_factory=list)
    messages: MessageProgress = field(default_factory=MessageProgress)  # over its channels, as they reported
    slot: ServedSlot = field(default_factory=ServedSlot)  # the slot it serves (a restart: its first run's)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (to now while it runs), to the millisecond."""
        if self.start_date is None:
            return None
        end = self.end_date or utcnow()
        return round(max(0.0, (end - self.start_date).total_seconds()), 3)

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
    suppressed: int | None = None  # on the suppression list when their message was due: not in ``total``
    skipped: dict[str, int] | None = None  # rows of the run's audience snapshot this channel skips, by reason
    delivery: str = ""  # smtp, sns (dry run), dry run; empty while a live channel's transport is not known
    dry_run: bool = False  # sends nothing: its messages go to a local file

    @property
    def skipped_text(self) -> str:
        """Skipped rows in words (``3 (no consent: 2, invalid address: 1)``); empty before the first report."""
        return skipped_text(self.skipped) if self.reported else ""

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
class AudienceView:
    """A run's audience as its ``build_audience`` task returned it, or why that task could not read it."""

    source: str | None = None  # sql, file or demo; None until build_audience has returned
    label: str = ""  # "SQL query on Connection crm", "CSV file s3://...", DEMO_AUDIENCE
    recipients: int | None = None
    snapshot_rows: int | None = None  # a real source's snapshot: its rows and the seconds it took to write
    snapshot_seconds: float | None = None
    snapshot_reused: bool = False  # written by the first run of this slot, found by this one
    task_state: str | None = None  # build_audience's state
    error: str | None = None  # build_audience failed: its message, or AUDIENCE_UNREAD
    log_path: str | None = None  # the failed build_audience task (with its log) in Airflow's UI

    @property
    def is_demo(self) -> bool:
        """Whether the run's audience is the synthetic demo one."""
        return self.source == "demo"

    @property
    def recipients_text(self) -> str:
        """``1,250 recipients``; ``0 recipients (the snapshot is empty)`` said plainly; empty before it is read."""
        if self.recipients is None:
            return ""
        if self.recipients == 0:
            return f"0 recipients (the {'audience' if self.is_demo else 'snapshot'} is empty)"
        return f"{self.recipients:,} recipient{'' if self.recipients == 1 else 's'}"

    @property
    def snapshot_text(self) -> str:
        """How the snapshot was made: ``snapshot: 1,250 rows in 0.84 s`` or reused; empty without one."""
        if self.snapshot_reused:
            return "snapshot reused from the first run of this slot"
        if self.snapshot_rows is None:
            return ""
        return f"snapshot: {self.snapshot_rows:,} rows in {self.snapshot_seconds or 0:.2f} s"

    @property
    def line(self) -> str:
        """The audience in one line, as run details and emails say it."""
        if self.error:
            return self.error
        if self.recipients is None:
            ended = self.task_state in ("success", "skipped", "upstream_failed", "removed")
            return f"not reported (build_audience {self.task_state})" if ended else "not read yet"
        snapshot = self.snapshot_text if self.recipients else ""
        return f"{self.label}: {self.recipients_text}" + (f" ({snapshot})" if snapshot else "")


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
    audience: AudienceView = field(default_factory=AudienceView)

    @property
    def dry_run_channels(self) -> list[str]:
        """The run's channels that are dry runs (nothing sent), as the run froze them."""
        return [c.channel for c in self.channels if c.dry_run]

    @property
    def dry_run_text(self) -> str:
        """``dry run`` when every channel of the run is one, ``dry run: sms, push`` when some are, else empty."""
        dry = self.dry_run_channels
        if not dry:
            return ""
        return DRY_RUN_LABEL if len(dry) == len(self.channels) else f"{DRY_RUN_LABEL}: {', '.join(dry)}"

    @property
    def overall_percent(self) -> int:
        """Messages handled of all reporting channels, in percent (task progress before any report)."""
        messages = MessageProgress.of(self.channels)
        return messages.percent if messages.total else self.run.progress_percent


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
