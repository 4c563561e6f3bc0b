"""Plain-dict views of campaigns, runs, history and work-list entries, shared by the CLI and the REST API.

Field names are the stable output documented in ``cli.py``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from campaign_runs.service import CampaignDetail, CampaignSummary, HistoryEntry, RunView, WorklistItem


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
        "schedule": summary.schedule,
        "schedule_description": summary.schedule_description,
        "timezone": timezone,
        "paused": summary.is_paused,
        "next_run_after": summary.next_run_after,
        "last_run_id": summary.last_run_id,
        "last_status": summary.last_status,
        "active_runs": summary.active_runs,
        "open_worklist": summary.open_worklist,
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
    }


def upcoming_row(slot: Any) -> dict[str, Any]:
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
    }


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    """One recorded action."""
    return dataclasses.asdict(entry)


def worklist_row(item: WorklistItem) -> dict[str, Any]:
    """One work-list entry."""
    return dataclasses.asdict(item)


def action_row(result: Any) -> dict[str, Any]:
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


def channel_progress(dag_id: str, run_id: str, channels: list[str], session: Session) -> list[dict[str, Any]]:
    """Progress per channel (XCom ``campaign_progress`` of task ``send_<channel>``, mapped ones summed).

    Every channel of the campaign is listed, with ``None`` counts until its task has reported.
    """
    from campaign_runs import progress

    reported: dict[str, dict[str, Any]] = {}
    for item in progress.channel_progress(dag_id, run_id, session=session):
        entry = reported.setdefault(
            item.channel, {"channel": item.channel, "task_id": item.task_id, "total": 0, "sent": 0, "failed": 0}
        )
        for key in ("total", "sent", "failed"):
            entry[key] += getattr(item, key)
    states: dict[str, str | None] = {}
    for task in progress.task_rows(dag_id, run_id, session=session):
        states.setdefault(task.task_id, task.state)
    rows = []
    for channel in [*channels, *sorted(set(reported) - set(channels))]:
        data = reported.get(channel)
        task_id = data["task_id"] if data else f"{progress.CHANNEL_TASK_PREFIX}{channel}"
        total = data["total"] if data else None
        rows.append(
            {
                "channel": channel,
                "task_id": task_id,
                "task_state": states.get(task_id),
                "total": total,
                "sent": data["sent"] if data else None,
                "failed": data["failed"] if data else None,
                "percent": min(100, int(100 * (data["sent"] + data["failed"]) / total)) if data and total else None,
            }
        )
    return rows


def task_instances(dag_id: str, run_id: str, session: Session) -> list[dict[str, Any]]:
    """The run's task instances in start order (one row per mapped instance)."""
    from campaign_runs import progress

    return [
        {
            "task_id": t.task_id,
            "map_index": t.map_index,
            "state": t.state,
            "try_number": t.try_number,
            "max_tries": t.max_tries,
            "start_date": t.start_date,
            "end_date": t.end_date,
            "duration_seconds": round(t.duration, 3) if t.duration is not None else None,
            "operator": t.operator,
        }
        for t in progress.task_rows(dag_id, run_id, session=session)
    ]


def load_run_details(dag_id: str, run_id: str) -> dict[str, Any]:
    """A run with its progress per channel, its tasks and its history (one session)."""
    from airflow.utils.session import create_session

    from campaign_runs import service

    with create_session() as session:
        run = service.get_run(dag_id, run_id, session=session)
        campaign = service.get_campaign(dag_id, session=session)
        history = service.run_history(dag_id, run_id, session=session)
        return {
            "dag_id": dag_id,
            **run_row(run),
            "triggering_user": run.triggering_user,
            "dag_run_state": run.dag_run_state,
            "progress": channel_progress(dag_id, run_id, campaign.summary.channels, session),
            "tasks": task_instances(dag_id, run_id, session),
            "history": [history_row(h) for h in history],
        }
