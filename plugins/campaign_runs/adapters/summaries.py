"""Reads for the Monitor and the run summaries: a campaign's recent runs, what is left to summarise, totals.

A summary is *fresh* when it was written for the DagRun's current end (``ended_at`` equals the run's
``end_date``): a run cleared and ended again, or deleted and made anew under the same run_id, is not.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.models.dag import DagTag
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from sqlalchemy import and_, exists, func, select, tuple_

from campaign_runs.adapters.runs import DagRunInfo, _info
from campaign_runs.adapters.tasks import CHANNEL_TASK_PREFIX, ProgressReport
from campaign_runs.domain import RecordStatus, utcnow
from campaign_runs.factory.keys import PROGRESS_KEY
from campaign_runs.tables import run_record, run_summary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

ORDER_CACHE_SIZE = 256
# (dag_id, limit) -> (run count, highest id, when ordered, ids newest first): see ``recent_runs``.
_order_cache: dict[tuple[str, int], tuple[int, int | None, datetime, list[int]]] = {}
_order_lock = threading.Lock()

ENDED_STATES = ("success", "failed")
ACTIVE_STATES = ("queued", "running")
# What the Monitor reads of a run: its identity, state and times (not its conf, data interval or trigger).
_RUN_COLUMNS = ("id", "dag_id", "run_id", "state", "run_after", "start_date", "end_date", "clear_number", "created_at")


def _campaign_dags(tag: str) -> Any:
    return select(DagTag.dag_id).where(DagTag.name == tag)


def _fresh_summary() -> Any:
    """SQL: a finalised summary of the DagRun, written for its current end."""
    return exists().where(
        run_summary.c.dag_id == DagRun.dag_id,
        run_summary.c.run_id == DagRun.run_id,
        run_summary.c.ended_at == DagRun.end_date,
        run_summary.c.finalised.is_(True),
    )


def _light_info(row: Any) -> DagRunInfo:
    return DagRunInfo(
        pk=row.id,
        dag_id=row.dag_id,
        run_id=row.run_id,
        state=str(row.state) if row.state else None,
        run_type=None,
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=row.run_after,
        start_date=row.start_date,
        end_date=row.end_date,
        triggering_user=None,
        conf={},
        clear_number=int(row.clear_number or 0),
        created_at=row.created_at,
    )


def _load(session: Session, ids: Any) -> list[DagRunInfo]:
    """``_RUN_COLUMNS`` of the runs ``ids`` selects, newest first."""
    columns = [getattr(DagRun, name) for name in _RUN_COLUMNS]
    rows = session.execute(
        select(*columns).where(DagRun.id.in_(ids)).order_by(DagRun.run_after.desc(), DagRun.id.desc())
    )
    return [_light_info(row) for row in rows]


def recent_runs(
    dag_id: str, *, since: datetime | None, until: datetime | None, limit: int, session: Session
) -> list[DagRunInfo]:
    """The DAG's newest ``limit`` runs (run_after in ``[since, until)`` when given), newest first: ``_RUN_COLUMNS``.

    Without dates, two queries: the DAG's run count and highest id (from an index), then the runs. Ordering
    by run_after reads every run of the DAG (no index has both), so the order found is kept per process
    while that count and id stay the same and no listed run was created since (SQLite reuses the id of a
    deleted last row).
    """
    ids = select(DagRun.id).where(DagRun.dag_id == dag_id)  # sort narrow rows, then load those kept
    if since is not None:
        ids = ids.where(DagRun.run_after >= since)
    if until is not None:
        ids = ids.where(DagRun.run_after < until)
    newest = ids.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(limit).scalar_subquery()
    if since is not None or until is not None:
        return _load(session, newest)
    count, top = session.execute(
        select(func.count(DagRun.id), func.max(DagRun.id)).where(DagRun.dag_id == dag_id)
    ).one()
    key, state = (dag_id, limit), (int(count or 0), top)
    with _order_lock:
        cached = _order_cache.get(key)
    if cached is not None and cached[:2] == state:
        found = _load(session, cached[3])
        if all(dr.created_at is None or dr.created_at <= cached[2] for dr in found):
            return found
    ordered_at = utcnow()
    found = _load(session, newest)
    with _order_lock:
        _order_cache.pop(key, None)
        while len(_order_cache) >= ORDER_CACHE_SIZE:
            _order_cache.pop(next(iter(_order_cache)))
        _order_cache[key] = (*state, ordered_at, [dr.pk for dr in found])
    return found


def runs_of(keys: Sequence[tuple[str, str]], session: Session) -> list[DagRunInfo]:
    """The DagRuns of ``(dag_id, run_id)`` pairs that exist, in one query."""
    if not keys:
        return []
    rows = session.scalars(select(DagRun).where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(keys))))
    return [_info(dr) for dr in rows]


def unsummarised_runs(tag: str, limit: int, session: Session) -> list[tuple[str, str]]:
    """Ended runs of DAGs tagged ``tag`` with no fresh summary (and not stopping), latest end first; one query."""
    stopping = exists().where(
        run_record.c.dag_id == DagRun.dag_id,
        run_record.c.run_id == DagRun.run_id,
        run_record.c.status == RecordStatus.STOPPING.value,
    )
    rows = session.execute(
        select(DagRun.dag_id, DagRun.run_id)
        .where(
            DagRun.dag_id.in_(_campaign_dags(tag)),
            DagRun.state.in_(ENDED_STATES),
            DagRun.end_date.is_not(None),
            ~_fresh_summary(),
            ~stopping,
        )
        .order_by(DagRun.end_date.desc())
        .limit(limit)
    )
    return [(dag_id, run_id) for dag_id, run_id in rows]


def summary_totals(since: datetime, session: Session) -> list[tuple[str, datetime, int, int]]:
    """``(dag_id, ended_at, sent, failed)`` of each fresh summary row of a run that ended since ``since``.

    Read by end date (its index), not grouped in SQL: grouping by campaign would pull the planner to scan
    every summary through the ``(dag_id, ended_at)`` index.
    """
    rows = session.execute(
        select(run_summary.c.dag_id, run_summary.c.ended_at, run_summary.c.sent, run_summary.c.failed)
        .join(
            DagRun,
            and_(
                DagRun.dag_id == run_summary.c.dag_id,
                DagRun.run_id == run_summary.c.run_id,
                DagRun.end_date == run_summary.c.ended_at,
            ),
        )
        .where(
            run_summary.c.ended_at >= since,
            run_summary.c.finalised.is_(True),
            DagRun.state.in_(ENDED_STATES),
        )
    )
    return [(dag_id, ended_at, int(sent or 0), int(failed or 0)) for dag_id, ended_at, sent, failed in rows]


def live_progress(tag: str, session: Session) -> list[tuple[str, datetime, ProgressReport]]:
    """``(dag_id, pushed at, report)`` of the active (queued, running) runs of DAGs tagged ``tag``; one query."""
    rows = session.execute(
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.value,
            XComModel.timestamp,
        ).where(
            # The few active runs first (by state), then their XCom by its key: never every progress ever pushed.
            XComModel.dag_run_id.in_(
                select(DagRun.id).where(DagRun.dag_id.in_(_campaign_dags(tag)), DagRun.state.in_(ACTIVE_STATES))
            ),
            XComModel.key == PROGRESS_KEY,
            XComModel.task_id.startswith(CHANNEL_TASK_PREFIX, autoescape=True),
        )
    ).all()
    found = []
    for row in rows:
        value = XComModel.deserialize_value(row)
        if isinstance(value, dict):
            found.append((row.dag_id, row.timestamp, ProgressReport(row.task_id, row.map_index, value)))
        else:
            log.warning("Ignoring %s of %s/%s/%s: not a mapping", PROGRESS_KEY, row.dag_id, row.run_id, row.task_id)
    return found
