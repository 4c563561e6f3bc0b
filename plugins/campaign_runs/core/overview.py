"""The overview across campaigns: messages today and over 7 days, open work, stuck stops, the outbox's health.

Finished runs count from their durable summaries (``campaign_run_summary``), toward the day they ended; runs
still going from their channel tasks' progress in XCom, toward the day it was last reported. A run that has
just ended counts again once the housekeeper's next pass has summarised it. A constant number of statements,
whatever the number of runs and campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from campaign_runs.adapters import summaries as stored_runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import notify
from campaign_runs.domain import RecordStatus, utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import email_outbox, run_record, worklist_entry

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.orm import Session

MESSAGE_KEYS = ("sent_today", "failed_today", "sent_7_days", "failed_7_days")


@dataclass(frozen=True)
class StuckRun:
    """A run stopping for longer than expected (the housekeeper should have finished it)."""

    dag_id: str
    run_id: str
    stop_requested_by: str | None
    stop_requested_at: datetime
    stopping_seconds: float


@dataclass(frozen=True)
class Overview:
    """Across campaigns: messages, failures, open work, stuck stops and the outbox's health."""

    sent_today: int
    failed_today: int
    sent_7_days: int
    failed_7_days: int
    open_worklist: int
    stuck_runs: list[StuckRun]
    stuck_after_seconds: int
    outbox_backlog: int
    oldest_pending_seconds: float | None
    generated_at: datetime = field(default_factory=utcnow)


def outbox_backlog(session: Session) -> tuple[int, datetime | None]:
    """Pending emails and when the oldest was written, in one query."""
    count, oldest = session.execute(
        select(func.count(), func.min(email_outbox.c.created_at)).where(email_outbox.c.status == notify.PENDING)
    ).one()
    return int(count or 0), oldest


def stuck_after() -> timedelta:
    """How long a stop may take before the run counts as stuck: twice the grace period, plus a minute."""
    return timedelta(seconds=2 * get_settings().stop_grace_seconds + 60)


def _stuck_runs(readable: Collection[str] | None, now: datetime, session: Session) -> list[StuckRun]:
    rows = session.execute(
        select(run_record)
        .where(
            run_record.c.status == RecordStatus.STOPPING.value,
            run_record.c.stop_requested_at < now - stuck_after(),
        )
        .order_by(run_record.c.stop_requested_at)
    )
    return [
        StuckRun(
            r.dag_id, r.run_id, r.stop_requested_by, r.stop_requested_at, (now - r.stop_requested_at).total_seconds()
        )
        for r in rows
        if readable is None or r.dag_id in readable
    ]


def _open_worklist(readable: Collection[str] | None, session: Session) -> int:
    rows = session.execute(
        select(worklist_entry.c.dag_id, func.count())
        .where(worklist_entry.c.resolved_at.is_(None))
        .group_by(worklist_entry.c.dag_id)
    )
    return sum(int(n) for dag_id, n in rows if readable is None or dag_id in readable)


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def messages(readable: Collection[str] | None, now: datetime, session: Session) -> dict[str, int]:
    """Sent and failed today and over 7 days: summaries of finished runs, XCom of active ones (two queries)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = dict.fromkeys(MESSAGE_KEYS, 0)

    def add(dag_id: str, moment: datetime, sent: int, failed: int) -> None:
        if readable is not None and dag_id not in readable:
            return
        found["sent_7_days"] += sent
        found["failed_7_days"] += failed
        if moment >= today:
            found["sent_today"] += sent
            found["failed_today"] += failed

    for dag_id, ended_at, sent, failed in stored_runs.summary_totals(now - timedelta(days=7), session):
        add(dag_id, ended_at, sent, failed)
    for dag_id, pushed_at, report in stored_runs.live_progress(get_settings().campaign_tag, session):
        add(dag_id, pushed_at, *(_count(report.value.get(key)) for key in ("sent", "failed")))
    return found


@provide_session
def overview(*, dag_ids: Collection[str] | None = None, session: Session = NEW_SESSION) -> Overview:
    """Across campaigns (only ``dag_ids`` when given; the outbox is everyone's), in a constant number of queries."""
    now = utcnow()
    backlog, oldest = outbox_backlog(session)
    return Overview(
        **messages(dag_ids, now, session),
        open_worklist=_open_worklist(dag_ids, session),
        stuck_runs=_stuck_runs(dag_ids, now, session),
        stuck_after_seconds=int(stuck_after().total_seconds()),
        outbox_backlog=backlog,
        oldest_pending_seconds=round((now - oldest).total_seconds(), 3) if oldest is not None else None,
        generated_at=now,
    )
