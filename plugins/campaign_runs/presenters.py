"""Plain-dict views of campaigns, runs, history and work-list entries for the CLI, made from the core's DTOs.

Each view is its DTO's fields (``dataclasses.asdict``) less what it leaves out, with the CLI's names where they
differ and the properties it shows; field names are the stable output documented in ``cli/commands.py``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# The CLI's names for DTO fields it calls otherwise.
_CAMPAIGN_NAMES = {"dag_id": "id", "is_paused": "paused"}
# What a run row leaves out of ``RunView`` (``run`` adds the first two back).
_RUN_OMITTED = ("triggering_user", "dag_run_state", "dag_id", "emails", "messages")


def _fields(
    values: Any,
    *,
    omit: tuple[str, ...] = (),
    names: dict[str, str] | None = None,
    after: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A DTO's fields (or a dict in its fields' order) less ``omit``, renamed by ``names``.

    ``after`` puts values (the properties a view shows, or fields it moves) right after a field: where the CLI
    has always shown them.
    """
    names, after = names or {}, after or {}
    placed = {key for extra in after.values() for key in extra}
    row: dict[str, Any] = {}
    for key, value in (values if isinstance(values, dict) else dataclasses.asdict(values)).items():
        if key not in omit and key not in placed:
            row[names.get(key, key)] = value
        row.update(after.get(key, {}))
    return row


def _run_fields(values: Any, duration_seconds: float | None, progress_percent: int) -> dict[str, Any]:
    """A run row: ``RunView``'s fields less ``_RUN_OMITTED``, with its duration and progress."""
    moved: dict[str, dict[str, Any]] = {
        "end_date": {"duration_seconds": duration_seconds},
        "tasks_total": {"progress_percent": progress_percent},
    }
    return _fields(values, omit=_RUN_OMITTED, after=moved)


def campaign_row(summary: CampaignSummary, timezone: str | None) -> dict[str, Any]:
    """A campaign's stable fields."""
    after: dict[str, dict[str, Any]] = {
        "audience": {
            "audience_label": summary.audience_label,
            "dry_run": summary.dry_run,
            "dry_run_channels": summary.dry_run_channels,
        },
        "schedule_description": {"timezone": timezone},
    }
    return _fields(summary, omit=("owner_emails",), names=_CAMPAIGN_NAMES, after=after)


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
    """A run's stable fields; ``slot`` is the slot it serves (a restart's is its first run's)."""
    return _run_fields(run, run.duration_seconds, run.progress_percent)


def upcoming_row(slot: UpcomingRun) -> dict[str, Any]:
    """An upcoming slot in the same shape as a run: a run's fields, empty but for the slot's own."""
    from campaign_runs.core.dto import RunView

    values = {
        **dict.fromkeys(f.name for f in dataclasses.fields(RunView)),
        **_fields(slot),
        "run_type": "scheduled",
        "tasks_done": 0,
        "tasks_total": 0,
        "allowed_actions": [],
        "slot": {
            "at": slot.logical_date or slot.run_after,
            "data_interval_start": slot.data_interval_start,
            "data_interval_end": slot.data_interval_end,
        },
    }
    return _run_fields(values, None, 0)


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    """One recorded action."""
    return _fields(entry)


def worklist_row(item: WorklistItem) -> dict[str, Any]:
    """One work-list entry."""
    return _fields(item)


def email_row(email: EmailView) -> dict[str, Any]:
    """One email of the outbox (no body)."""
    return _fields(email)


def action_row(result: ActionResult) -> dict[str, Any]:
    """What an action did."""
    return _fields(result, omit=("outbox_ids",))


def progress_row(progress: ChannelProgress) -> dict[str, Any]:
    """One channel's progress: counts are null until its task has reported; ``skipped`` is by reason."""
    return _fields(progress, after={"skipped": {"percent": progress.percent}})


def audience_row(audience: AudienceView) -> dict[str, Any]:
    """A run's audience: source, label, recipients, snapshot, or why ``build_audience`` failed; ``summary`` says it."""
    return _fields(audience, after={"label": {"demo": audience.is_demo}, "log_path": {"summary": audience.line}})


def run_details_row(details: RunDetails) -> dict[str, Any]:
    """A run with its audience, its progress per channel, its tasks and its history."""
    run = details.run
    return {
        "dag_id": run.dag_id,
        **run_row(run),
        "triggering_user": run.triggering_user,
        "dag_run_state": run.dag_run_state,
        "dag_version": details.dag_version,
        "dry_run_channels": details.dry_run_channels,
        "audience": audience_row(details.audience),
        "progress": [progress_row(c) for c in details.channels],
        "tasks": [_fields(t) for t in details.tasks],
        "history": [history_row(h) for h in details.history],
        "emails": [email_row(e) for e in details.run.emails],
    }
