"""Plain-dict views of campaigns, runs, history and work-list entries, shared by the CLI and the REST API.

Field names are the stable output documented in ``cli/commands.py``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from campaign_runs.core import (
        ActionResult,
        CampaignDetail,
        CampaignSummary,
        HistoryEntry,
        RunDetails,
        RunView,
        UpcomingRun,
        WorklistItem,
    )
    from campaign_runs.core.dto import AudienceView, ChannelProgress, EmailView


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def campaign_row(summary: CampaignSummary, timezone: str | None) -> dict[str, Any]:
    """A campaign's stable fields."""
    return {
        "id": summary.dag_id,
        "description": summary.description,
        "owners": summary.owners,
        "channels": summary.channels,
        "audience": summary.audience,
        "audience_label": summary.audience_label,
        "dry_run": summary.dry_run,
        "dry_run_channels": summary.dry_run_channels,
        "schedule": summary.schedule,
        "schedule_description": summary.schedule_description,
        "timezone": timezone,
        "paused": summary.is_paused,
        "next_run_after": summary.next_run_after,
        "last_run_id": summary.last_run_id,
        "last_status": summary.last_status,
        "active_runs": summary.active_runs,
        "open_worklist": summary.open_worklist,
        "failed_emails": summary.failed_emails,
    }


def campaign_detail(detail: CampaignDetail) -> dict[str, Any]:
    """A campaign's About information."""
    return {
        **campaign_row(detail.summary, detail.timezone),
        "owner_emails": detail.summary.owner_emails,
        "tags": detail.tags,
        "params": detail.params,
        "doc_md": detail.doc_md,
    }


def run_row(run: RunView) -> dict[str, Any]:
    """A run's stable fields."""
    return {
        "run_id": run.run_id,
        "status": run.status,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "run_after": run.run_after,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "duration_seconds": round(run.duration_seconds, 3) if run.duration_seconds is not None else None,
        "tasks_done": run.tasks_done,
        "tasks_total": run.tasks_total,
        "progress_percent": run.progress_percent,
        "note": run.note,
        "restart_of": run.restart_of,
        "replaced_by": run.replaced_by,
        "allowed_actions": run.allowed_actions,
        "slot": dataclasses.asdict(run.slot),  # the slot it serves: a restart's is its first run's
    }


def upcoming_row(slot: UpcomingRun) -> dict[str, Any]:
    """An upcoming slot in the same shape as a run."""
    return {
        "run_id": None,
        "status": slot.status,
        "run_type": "scheduled",
        "logical_date": slot.logical_date,
        "run_after": slot.run_after,
        "data_interval_start": slot.data_interval_start,
        "data_interval_end": slot.data_interval_end,
        "start_date": None,
        "end_date": None,
        "duration_seconds": None,
        "tasks_done": 0,
        "tasks_total": 0,
        "progress_percent": 0,
        "note": None,
        "restart_of": None,
        "replaced_by": None,
        "allowed_actions": [],
        "slot": {
            "at": slot.logical_date or slot.run_after,
            "data_interval_start": slot.data_interval_start,
            "data_interval_end": slot.data_interval_end,
        },
    }


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    """One recorded action."""
    return dataclasses.asdict(entry)


def worklist_row(item: WorklistItem) -> dict[str, Any]:
    """One work-list entry."""
    return dataclasses.asdict(item)


def email_row(email: EmailView) -> dict[str, Any]:
    """One email of the outbox (no body)."""
    return {
        "id": email.id,
        "dag_id": email.dag_id,
        "run_id": email.run_id,
        "kind": email.kind,
        "username": email.username,
        "recipient": email.recipient,
        "subject": email.subject,
        "status": email.status,
        "attempts": email.attempts,
        "last_error": email.last_error,
        "created_at": email.created_at,
        "sent_at": email.sent_at,
        "next_attempt_at": email.next_attempt_at,
    }


def action_row(result: ActionResult) -> dict[str, Any]:
    """What an action did."""
    return {
        "action_id": result.action_id,
        "action": result.action,
        "dag_id": result.dag_id,
        "run_id": result.run_id,
        "actor": result.actor,
        "status_before": result.status_before,
        "status_after": result.status_after,
        "new_run_id": result.new_run_id,
        "replayed": result.replayed,
    }


def progress_row(progress: ChannelProgress) -> dict[str, Any]:
    """One channel's progress: counts are null until its task has reported; ``skipped`` is by reason."""
    return {
        "channel": progress.channel,
        "task_id": progress.task_id,
        "task_state": progress.task_state,
        "total": progress.total,
        "sent": progress.sent,
        "failed": progress.failed,
        "in_doubt": progress.in_doubt,
        "suppressed": progress.suppressed,
        "skipped": progress.skipped,
        "percent": progress.percent,
        "delivery": progress.delivery,
        "dry_run": progress.dry_run,
    }


def audience_row(audience: AudienceView) -> dict[str, Any]:
    """A run's audience: source, label, recipients, snapshot, or why ``build_audience`` failed; ``summary`` says it."""
    return {
        "source": audience.source,
        "label": audience.label,
        "demo": audience.is_demo,
        "recipients": audience.recipients,
        "snapshot_rows": audience.snapshot_rows,
        "snapshot_seconds": audience.snapshot_seconds,
        "snapshot_reused": audience.snapshot_reused,
        "task_state": audience.task_state,
        "error": audience.error,
        "log_path": audience.log_path,
        "summary": audience.line,
    }


def run_details_row(details: RunDetails) -> dict[str, Any]:
    """A run with its audience, its progress per channel, its tasks and its history."""
    run = details.run
    return {
        "dag_id": run.dag_id,
        **run_row(run),
        "triggering_user": run.triggering_user,
        "dag_run_state": run.dag_run_state,
        "dag_version": details.dag_version,
        "dry_run_channels": [c.channel for c in details.channels if c.dry_run],
        "audience": audience_row(details.audience),
        "progress": [progress_row(c) for c in details.channels],
        "tasks": [dataclasses.asdict(t) for t in details.tasks],
        "history": [history_row(h) for h in details.history],
        "emails": [email_row(e) for e in details.run.emails],
    }
