"""Durable per-run, per-channel numbers (``campaign_run_summary``), written on the server side.

Task processes cannot write the metadata DB (the Task SDK), so a run's summary is taken from its channel
tasks' last progress in XCom when the run has ended: after the scheduler's DAG-run listeners saw it end
(``mark_ended``, summarised by the housekeeper's next pass), when a plugin Stop finishes (``finalise_stopped``),
and by a bounded backfill of ended runs with no summary (runs that ended before the plugin was installed, or
whose listener did not fire). Finalising a summary sends the messages it adds as metrics.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from campaign_runs.adapters import dags, metrics, runs, tasks
from campaign_runs.adapters import summaries as stored_runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import records
from campaign_runs.core.progress import channel_progress
from campaign_runs.core.reconcile import applied_status
from campaign_runs.domain import RecordStatus, RunStatus, derive_status, utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import run_summary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from campaign_runs.adapters.runs import DagRunInfo

log = logging.getLogger(__name__)

NO_CHANNEL = ""  # the one row of a run whose campaign declares no channel and none reported
BACKFILL_BATCH = 100
BACKFILL_EVERY_SECONDS = 60.0
METRICS_WINDOW = timedelta(days=1)  # runs that ended longer ago (backfilled) add no metrics
PENDING_TRIES = 60
NUMBERS = ("sent", "failed", "in_doubt", "total", "suppressed")

_lock = threading.Lock()
_pending: dict[tuple[str, str], int] = {}
_next_backfill = 0.0


# One channel of a stored summary: sent, failed, in doubt, total, suppressed and skipped rows by reason.
StoredChannel = tuple[int, int, int, int, int, dict[str, int]]


@dataclass(frozen=True)
class StoredRun:
    """A run's summary: its status and end when finalised, and ``channel -> StoredChannel``."""

    status: str
    ended_at: datetime | None
    channels: dict[str, StoredChannel]


def skipped_json(skipped: dict[str, int] | None) -> str | None:
    """The ``skipped`` column: JSON by reason (sorted), None when nothing was skipped."""
    return json.dumps(skipped, sort_keys=True) if skipped else None


def skipped_of(text: str | None) -> dict[str, int]:
    """The ``skipped`` column read back (an unreadable value reads as nothing skipped)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)} if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Delta:
    """Messages a finalised summary adds to a campaign's channel, for the metrics."""

    dag_id: str
    channel: str
    sent: int
    failed: int


def stored(dag_id: str, run_ids: Sequence[str], session: Session) -> dict[str, StoredRun]:
    """The finalised summary of each of ``run_ids`` that has one, in one query."""
    if not run_ids:
        return {}
    columns = ("run_id", "channel", "status", "ended_at", *NUMBERS, "skipped")
    rows = session.execute(
        select(*(run_summary.c[name] for name in columns)).where(
            run_summary.c.dag_id == dag_id,
            run_summary.c.run_id.in_(list(run_ids)),
            run_summary.c.finalised.is_(True),
        )
    )
    found: dict[str, StoredRun] = {}
    for run_id, channel, status, ended_at, sent, failed, in_doubt, total, suppressed, skipped in rows:
        run = found.get(run_id)
        if run is None:
            run = found[run_id] = StoredRun(status, ended_at, {})
        if channel != NO_CHANNEL:
            run.channels[channel] = (sent, failed, in_doubt, total, suppressed or 0, skipped_of(skipped))
    return found


def is_fresh(summary: StoredRun | None, dag_run: DagRunInfo) -> bool:
    """Whether ``summary`` was finalised for the run's current end (not before a clear, not for a namesake)."""
    return (
        summary is not None
        and dag_run.state in stored_runs.ENDED_STATES
        and dag_run.end_date is not None
        and summary.ended_at == dag_run.end_date
    )


def _declared(tags: list[str]) -> list[str]:
    return [t.split(":", 1)[1] for t in tags if t.startswith("channel:")]


def _row(dag_run: DagRunInfo, channel: str, numbers: dict[str, Any], status: str) -> dict[str, Any]:
    start, end = dag_run.start_date, dag_run.end_date
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "channel": channel,
        **numbers,
        "status": status,
        "started_at": start,
        "ended_at": end,
        "duration_seconds": round((end - start).total_seconds(), 3) if start and end else None,
        "finalised": True,
        "updated_at": utcnow(),
    }


def _deltas(row: dict[str, Any], before: StoredRun | None) -> list[Delta]:
    """What the row adds to the counters: all of it, or what grew since a summary of the same end."""
    if row["channel"] == NO_CHANNEL or row["ended_at"] is None or row["ended_at"] < utcnow() - METRICS_WINDOW:
        return []
    old = before.channels.get(row["channel"]) if before and before.ended_at == row["ended_at"] else None
    sent, failed = (row["sent"], row["failed"]) if old is None else (row["sent"] - old[0], row["failed"] - old[1])
    return [Delta(row["dag_id"], row["channel"], max(0, sent), max(0, failed))] if sent > 0 or failed > 0 else []


def _summarise(
    dag_id: str, group: list[DagRunInfo], declared: list[str], status: str | None, session: Session
) -> tuple[list[dict[str, Any]], list[Delta]]:
    """Rows and deltas of one campaign's runs (a run still stopping is left to ``finalise_stopped``)."""
    run_ids = [dr.run_id for dr in group]
    reports = tasks.progress_reports_of(dag_id, run_ids, session)
    found = records.records(dag_id, run_ids, session) if status is None else {}
    before = stored(dag_id, run_ids, session)
    rows: list[dict[str, Any]] = []
    deltas: list[Delta] = []
    for dr in group:
        applied = applied_status(found.get(dr.run_id), dr)
        if status is None and applied == RecordStatus.STOPPING:
            continue
        shown = status or derive_status(dr.state, applied, 0).value
        channels = channel_progress(declared, reports.get(dr.run_id, []), [])
        numbers = [
            (c.channel, {**{key: int(getattr(c, key) or 0) for key in NUMBERS}, "skipped": skipped_json(c.skipped)})
            for c in channels
        ]
        for channel, values in numbers or [(NO_CHANNEL, {**dict.fromkeys(NUMBERS, 0), "skipped": None})]:
            rows.append(_row(dr, channel, values, shown))
            deltas.extend(_deltas(rows[-1], before.get(dr.run_id)))
    return rows, deltas


def finalise(dag_runs: Sequence[DagRunInfo], session: Session, *, status: str | None = None) -> list[Delta]:
    """Write the summaries of ended campaign runs, replacing earlier ones, in the caller's transaction.

    ``status`` overrides the displayed status (a stop being finished). Statements: a few per campaign.
    Returns the messages to count (``emit`` them once the transaction commits).
    """
    by_dag: dict[str, list[DagRunInfo]] = defaultdict(list)
    for dr in dag_runs:
        if dr.state in stored_runs.ENDED_STATES:
            by_dag[dr.dag_id].append(dr)
    tags = dags.tags_of(list(by_dag), session)
    campaign_tag = get_settings().campaign_tag
    deltas: list[Delta] = []
    for dag_id, group in by_dag.items():
        if campaign_tag not in tags.get(dag_id, []):
            continue
        rows, added = _summarise(dag_id, group, _declared(tags[dag_id]), status, session)
        if not rows:
            continue
        written = sorted({row["run_id"] for row in rows})
        session.execute(delete(run_summary).where(run_summary.c.dag_id == dag_id, run_summary.c.run_id.in_(written)))
        session.execute(insert(run_summary), rows)
        deltas.extend(added)
    return deltas


def emit(deltas: Sequence[Delta]) -> None:
    """Count finalised messages per campaign and channel: tagged names, and names that carry them (StatsD)."""
    for d in deltas:
        tags = {"dag_id": d.dag_id, "channel": d.channel}
        for kind, count in (("sent", d.sent), ("failed", d.failed)):
            if count:
                metrics.incr(f"messages.{kind}", count, tags=tags)
                metrics.incr(f"messages.{kind}.{d.dag_id}.{d.channel}", count)


def finalise_stopped(dag_id: str, run_id: str, session: Session) -> list[Delta]:
    """Summarise a run whose stop is being finished (``stopped``), in the caller's transaction."""
    dag_run = runs.get_run(dag_id, run_id, session)
    if dag_run is None:
        return []
    return finalise([dag_run], session, status=RunStatus.STOPPED.value)


def mark_ended(dag_id: str, run_id: str) -> None:
    """Note a run the scheduler saw end: the housekeeper's next pass summarises it (after the scheduler commits)."""
    with _lock:
        _pending.setdefault((dag_id, run_id), 0)


def _take_pending() -> dict[tuple[str, str], int]:
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    return taken


def _requeue(waiting: dict[tuple[str, str], int]) -> None:
    """Runs not ended yet (their end not committed): tried again next pass, a bounded number of times."""
    with _lock:
        for key, tries in waiting.items():
            if tries + 1 < PENDING_TRIES:
                _pending.setdefault(key, tries + 1)


def _backfill_keys(backfill: bool | None, session: Session) -> list[tuple[str, str]]:
    global _next_backfill
    if backfill is False or (backfill is None and time.monotonic() < _next_backfill):
        return []
    keys = stored_runs.unsummarised_runs(get_settings().campaign_tag, BACKFILL_BATCH, session)
    # A full batch: more are waiting, take the next one on the next pass.
    _next_backfill = time.monotonic() + (0.0 if len(keys) == BACKFILL_BATCH else BACKFILL_EVERY_SECONDS)
    return keys


@provide_session
def finalise_ended(*, backfill: bool | None = None, session: Session = NEW_SESSION) -> int:
    """Summarise the runs listeners saw end, and ended runs with no summary (every minute, or when ``backfill``).

    Commits once for all of them, then sends their metrics. Returns how many runs were summarised.
    """
    pending = _take_pending()
    keys = list(dict.fromkeys([*pending, *_backfill_keys(backfill, session)]))
    if not keys:
        return 0
    found = stored_runs.runs_of(keys, session)
    ended = [dr for dr in found if dr.state in stored_runs.ENDED_STATES and dr.end_date is not None]
    done = {(dr.dag_id, dr.run_id) for dr in ended}
    waiting = {(dr.dag_id, dr.run_id) for dr in found} - done
    try:
        deltas = finalise(ended, session)
        session.commit()
    except IntegrityError:  # another scheduler wrote the same summaries meanwhile
        session.rollback()
        log.info("Run summaries written concurrently by another process; leaving them")
        return 0
    finally:
        _requeue({key: tries for key, tries in pending.items() if key in waiting})
    emit(deltas)
    return len(ended)
