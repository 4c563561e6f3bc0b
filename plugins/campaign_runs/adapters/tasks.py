"""A run's task instances, the progress its channel tasks publish to XCom, and errors from their logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.state import TaskInstanceState
from sqlalchemy import select

from campaign_runs.factory.keys import AUDIENCE_ERROR_KEY, GUARD_KEY, PROGRESS_KEY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL_TASK_PREFIX = "send_"
AUDIENCE_TASK = "build_audience"
RETURN_VALUE_KEY = "return_value"
FAILURE_MESSAGE_MAX = 500


@dataclass(frozen=True)
class ProgressReport:
    """The ``campaign_progress`` value one ``send_<channel>`` task instance last published."""

    task_id: str
    map_index: int
    value: dict[str, Any]


@dataclass(frozen=True)
class TaskRow:
    """One task instance of a run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    operator: str | None


def progress_reports(dag_id: str, run_id: str, session: Session) -> list[ProgressReport]:
    """XCom ``campaign_progress`` of the run's ``send_*`` task instances, in one query."""
    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.value)
        .where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.key == PROGRESS_KEY,
            XComModel.task_id.startswith(CHANNEL_TASK_PREFIX, autoescape=True),
        )
        .order_by(XComModel.task_id, XComModel.map_index)
    ).all()
    reports = []
    for row in rows:
        value = XComModel.deserialize_value(row)
        if not isinstance(value, dict):
            log.warning("Ignoring %s of %s/%s/%s: not a mapping", PROGRESS_KEY, dag_id, run_id, row.task_id)
            continue
        reports.append(ProgressReport(row.task_id, row.map_index, value))
    return reports


def _report(row: Any) -> ProgressReport | None:
    value = XComModel.deserialize_value(row)
    if not isinstance(value, dict):
        log.warning("Ignoring %s of %s/%s/%s: not a mapping", PROGRESS_KEY, row.dag_id, row.run_id, row.task_id)
        return None
    return ProgressReport(row.task_id, row.map_index, value)


def progress_reports_of(dag_id: str, run_ids: Sequence[str], session: Session) -> dict[str, list[ProgressReport]]:
    """``progress_reports`` of each of ``run_ids`` (those with any), in one query."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index, XComModel.value)
        .where(
            XComModel.dag_id == dag_id,
            XComModel.run_id.in_(list(run_ids)),
            XComModel.key == PROGRESS_KEY,
            XComModel.task_id.startswith(CHANNEL_TASK_PREFIX, autoescape=True),
        )
        .order_by(XComModel.run_id, XComModel.task_id, XComModel.map_index)
    ).all()
    found: dict[str, list[ProgressReport]] = {}
    for row in rows:
        if (report := _report(row)) is not None:
            found.setdefault(row.run_id, []).append(report)
    return found


def audience_result(dag_id: str, run_id: str, session: Session) -> dict[str, Any] | None:
    """What the run's ``build_audience`` returned (XCom ``return_value``), with ``error`` if it failed; one query."""
    rows = session.execute(
        select(XComModel.key, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == AUDIENCE_TASK,
            XComModel.map_index == -1,
            XComModel.key.in_((RETURN_VALUE_KEY, AUDIENCE_ERROR_KEY)),
        )
    ).all()
    found = {row.key: XComModel.deserialize_value(row) for row in rows}
    value = found.get(RETURN_VALUE_KEY)
    if value is not None and not isinstance(value, dict):
        log.warning("Ignoring the %s result of %s/%s: not a mapping", AUDIENCE_TASK, dag_id, run_id)
        value = None
    if isinstance(error := found.get(AUDIENCE_ERROR_KEY), str):
        return {**(value or {}), "error": error}
    return value


def audience_results_of(dag_id: str, run_ids: Sequence[str], session: Session) -> dict[str, dict[str, Any]]:
    """What ``build_audience`` returned in each of ``run_ids`` (those where it did), in one query."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id.in_(list(run_ids)),
            XComModel.task_id == AUDIENCE_TASK,
            XComModel.map_index == -1,
            XComModel.key == RETURN_VALUE_KEY,
        )
    ).all()
    found = {row.run_id: XComModel.deserialize_value(row) for row in rows}
    return {run_id: value for run_id, value in found.items() if isinstance(value, dict)}


def task_rows(dag_id: str, run_id: str, session: Session) -> list[TaskRow]:
    """The run's task instances in start order, in one query."""
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.max_tries,
            TaskInstance.start_date,
            TaskInstance.end_date,
            TaskInstance.duration,
            TaskInstance.operator,
        )
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        .order_by(TaskInstance.start_date.is_(None), TaskInstance.start_date, TaskInstance.task_id)
    ).all()
    return [
        TaskRow(
            task_id=r.task_id,
            map_index=r.map_index,
            state=str(r.state) if r.state else None,
            try_number=r.try_number or 0,
            max_tries=r.max_tries or 0,
            start_date=r.start_date,
            end_date=r.end_date,
            duration=r.duration,
            operator=r.operator,
        )
        for r in rows
    ]


def _error_of(message: Any) -> str | None:
    """The error a structured log line reports, or None for any other line."""
    if str(getattr(message, "level", "") or "").lower() not in ("error", "critical"):
        return None
    details = getattr(message, "error_detail", None)
    if isinstance(details, list) and details and isinstance(details[-1], dict):
        last = details[-1]
        return f"{last.get('exc_type', 'Error')}: {last.get('exc_value', '')}".strip()
    return str(message.event) if getattr(message, "event", None) else None


def failure_messages(dag_id: str, run_id: str, session: Session, *, limit: int = 5) -> dict[str, str]:
    """The last error in the log of each failed task of a run (at most ``limit`` tasks), by task id."""
    from airflow.utils.log.log_reader import TaskLogReader

    tis = session.scalars(
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.state == TaskInstanceState.FAILED,
            TaskInstance.try_number > 0,
        )
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
        .limit(limit)
    ).all()
    if not tis:
        return {}
    reader = TaskLogReader()
    messages: dict[str, str] = {}
    for ti in tis:
        try:
            stream, _ = reader.read_log_chunks(ti, ti.try_number, {"end_of_log": False})
            found = None
            for line in stream:
                found = _error_of(line) or found
        except Exception:
            log.warning("Could not read the log of %s/%s/%s", dag_id, run_id, ti.task_id, exc_info=True)
            continue
        if found:
            messages[ti.task_id] = found[:FAILURE_MESSAGE_MAX]
    return messages


@dataclass(frozen=True)
class GuardTrip:
    """A ``campaign_guard`` XCom of a running run that no Stop followed yet, with its DAG's owners and owner link."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    pushed_at: datetime
    value: dict[str, Any]
    owners: str
    owner_link: str | None


def tripped_guards(session: Session, limit: int = 50) -> list[GuardTrip]:
    """Guards tripped on running runs, not yet followed by a Stop, oldest first: one query, from the running runs."""
    from airflow.models.dag import DagModel, DagOwnerAttributes
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from sqlalchemy import and_, exists

    from campaign_runs.domain import Action
    from campaign_runs.tables import run_action

    stopped_since = exists().where(
        run_action.c.dag_id == DagRun.dag_id,
        run_action.c.run_id == DagRun.run_id,
        run_action.c.action == Action.STOP.value,
        run_action.c.created_at >= XComModel.timestamp,
    )
    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.value, XComModel.timestamp)
        .add_columns(DagRun.dag_id, DagRun.run_id, DagModel.owners, DagOwnerAttributes.link)
        .select_from(DagRun)
        .join(XComModel, and_(XComModel.dag_run_id == DagRun.id, XComModel.key == GUARD_KEY))
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .outerjoin(
            DagOwnerAttributes,
            and_(DagOwnerAttributes.dag_id == DagRun.dag_id, DagOwnerAttributes.owner == DagModel.owners),
        )
        .where(DagRun.state == DagRunState.RUNNING, ~stopped_since)
        .order_by(XComModel.timestamp)
        .limit(limit)
    ).all()
    trips = []
    for row in rows:
        value = XComModel.deserialize_value(row)
        if not isinstance(value, dict):
            log.warning("Ignoring %s of %s/%s/%s: not a mapping", GUARD_KEY, row.dag_id, row.run_id, row.task_id)
            continue
        trips.append(
            GuardTrip(
                row.dag_id, row.run_id, row.task_id, row.map_index, row.timestamp, value, row.owners or "", row.link
            )
        )
    return trips
