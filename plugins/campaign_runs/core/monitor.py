"""Monitor: delivery per run and channel, durations, statuses and interventions across a campaign's runs.

The numbers come from the progress each ``send_<channel>`` task publishes to XCom (read for all listed runs in
one query), Airflow's DagRun rows and the plugin's own history and work list: a constant number of statements
whatever the number of runs.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from campaign_runs.adapters import dags, runs, tasks
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import notify
from campaign_runs.core.campaigns import require_campaign
from campaign_runs.core.details import channel_progress
from campaign_runs.core.schedule import run_views
from campaign_runs.domain import Action, InvalidOptionError, RecordStatus, utcnow
from campaign_runs.models import email_outbox, run_action, run_record, worklist_entry
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from sqlalchemy.orm import Session

LIMITS = (10, 30, 100)
MAX_LIMIT = max(LIMITS)
STATUS_MIX = ("completed", "failed", "stopped", "skipped")
INTERVENTIONS = (Action.STOP, Action.RESTART, Action.SKIP, Action.REASSIGN)
TABLE_COLUMNS: tuple[str, ...] = ("run_id", "status", "run_after", "duration_seconds", "channel", "sent", "failed")
TABLE_COLUMNS += ("in_doubt", "total", "delivery_rate", "stops", "restarts", "skips")


def delivery_rate(sent: int, total: int) -> float | None:
    """Share of the channel's recipients it sent to (0..1, 4 decimals); None without recipients."""
    return round(sent / total, 4) if total > 0 else None


@dataclass(frozen=True)
class ChannelNumbers:
    """Messages of one channel (of one run, or summed over runs)."""

    channel: str
    sent: int
    failed: int
    in_doubt: int
    total: int

    @property
    def delivery_rate(self) -> float | None:
        """Sent over total recipients."""
        return delivery_rate(self.sent, self.total)


@dataclass(frozen=True)
class Intervention:
    """One Stop, Restart, Skip or Reassign taken on a run, with its note."""

    run_id: str
    action: str
    actor: str
    note: str
    created_at: datetime
    new_run_id: str | None


@dataclass(frozen=True)
class RunMetrics:
    """One run: status, timing, messages per channel and interventions."""

    run_id: str
    status: str
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration_seconds: float | None
    channels: list[ChannelNumbers]
    stops: int
    restarts: int
    skips: int
    restart_of: str | None

    def _sum(self, key: str) -> int:
        return sum(int(getattr(c, key)) for c in self.channels)

    @property
    def sent(self) -> int:
        """Messages sent over every channel."""
        return self._sum("sent")

    @property
    def failed(self) -> int:
        """Messages failed over every channel."""
        return self._sum("failed")


@dataclass(frozen=True)
class CampaignMetrics:
    """A campaign's last runs (or those in a date range), newest first, and what they add up to."""

    dag_id: str
    limit: int
    since: datetime | None
    until: datetime | None
    runs: list[RunMetrics]
    totals: list[ChannelNumbers]
    status_mix: dict[str, int]
    interventions: list[Intervention]
    worklist_resolved: int
    worklist_open: int
    resolve_median_seconds: float | None
    resolve_worst_seconds: float | None


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


def _channels(reports: list[tasks.ProgressReport], declared: list[str]) -> list[ChannelNumbers]:
    return [
        ChannelNumbers(p.channel, p.sent or 0, p.failed or 0, p.in_doubt or 0, p.total or 0)
        for p in channel_progress(declared, reports, [])
    ]


def _interventions(dag_id: str, run_ids: Sequence[str], session: Session) -> list[Intervention]:
    if not run_ids:
        return []
    rows = session.execute(
        select(run_action)
        .where(
            run_action.c.dag_id == dag_id,
            run_action.c.run_id.in_(list(run_ids)),
            run_action.c.action.in_([a.value for a in INTERVENTIONS]),
        )
        .order_by(run_action.c.created_at, run_action.c.id)
    )
    return [Intervention(r.run_id, r.action, r.actor, r.note, r.created_at, r.new_run_id) for r in rows]


def _resolution(dag_id: str, run_ids: Sequence[str], session: Session) -> tuple[list[float], int]:
    """Seconds each resolved work-list entry of the runs took, and how many are still open."""
    if not run_ids:
        return [], 0
    rows = session.execute(
        select(worklist_entry.c.created_at, worklist_entry.c.resolved_at).where(
            worklist_entry.c.dag_id == dag_id, worklist_entry.c.run_id.in_(list(run_ids))
        )
    ).all()
    waits = [(r.resolved_at - r.created_at).total_seconds() for r in rows if r.resolved_at is not None]
    return waits, sum(1 for r in rows if r.resolved_at is None)


def _aware(moment: datetime | None) -> datetime | None:
    """A date without a time zone is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start is not None and end is not None else None


def _totals(found: list[RunMetrics]) -> list[ChannelNumbers]:
    sums: dict[str, list[int]] = {}
    for run in found:
        for c in run.channels:
            entry = sums.setdefault(c.channel, [0, 0, 0, 0])
            for i, value in enumerate((c.sent, c.failed, c.in_doubt, c.total)):
                entry[i] += value
    return [ChannelNumbers(name, *values) for name, values in sums.items()]


def _run(view: Any, reports: list[tasks.ProgressReport], declared: list[str], acts: list[Intervention]) -> RunMetrics:
    acted = [i.action for i in acts if i.run_id == view.run_id]
    return RunMetrics(
        run_id=view.run_id,
        status=view.status,
        run_after=view.run_after,
        start_date=view.start_date,
        end_date=view.end_date,
        duration_seconds=_duration(view.start_date, view.end_date),
        channels=_channels(reports, declared),
        stops=acted.count(Action.STOP.value),
        restarts=acted.count(Action.RESTART.value),
        skips=acted.count(Action.SKIP.value),
        restart_of=view.restart_of,
    )


@provide_session
def campaign_metrics(
    dag_id: str,
    *,
    limit: int = LIMITS[0],
    since: datetime | None = None,
    until: datetime | None = None,
    session: Session = NEW_SESSION,
) -> CampaignMetrics:
    """The campaign's newest ``limit`` runs (run_after in ``[since, until)`` when given) and their numbers."""
    since, until = _aware(since), _aware(until)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidOptionError(f"limit must be between 1 and {MAX_LIMIT}.")
    if since is not None and until is not None and until <= since:
        raise InvalidOptionError("The end of the date range must come after its start.")
    require_campaign(dag_id, session)
    declared = [t.split(":", 1)[1] for t in dags.tags_of([dag_id], session).get(dag_id, []) if t.startswith("channel:")]
    dag_runs = runs.recent_runs(dag_id, since=since, until=until, limit=limit, session=session)
    run_ids = [dr.run_id for dr in dag_runs]
    views = run_views(dag_id, dag_runs, session)
    reports = tasks.progress_reports_of(dag_id, run_ids, session)
    interventions = _interventions(dag_id, run_ids, session)
    waits, still_open = _resolution(dag_id, run_ids, session)
    found = [_run(view, reports.get(view.run_id, []), declared, interventions) for view in views]
    mix = dict.fromkeys(STATUS_MIX, 0)
    for run in found:
        mix[run.status] = mix.get(run.status, 0) + 1
    return CampaignMetrics(
        dag_id=dag_id,
        limit=limit,
        since=since,
        until=until,
        runs=found,
        totals=_totals(found),
        status_mix=mix,
        interventions=interventions,
        worklist_resolved=len(waits),
        worklist_open=still_open,
        resolve_median_seconds=round(statistics.median(waits), 3) if waits else None,
        resolve_worst_seconds=round(max(waits), 3) if waits else None,
    )


def table_rows(metrics: CampaignMetrics) -> list[dict[str, Any]]:
    """The Monitor table: one row per run and channel, newest run first (``TABLE_COLUMNS``)."""
    rows = []
    for run in metrics.runs:
        for c in run.channels or [ChannelNumbers("", 0, 0, 0, 0)]:
            rows.append(
                {
                    "run_id": run.run_id,
                    "status": run.status,
                    "run_after": run.run_after.isoformat() if run.run_after else None,
                    "duration_seconds": run.duration_seconds,
                    "channel": c.channel,
                    "sent": c.sent,
                    "failed": c.failed,
                    "in_doubt": c.in_doubt,
                    "total": c.total,
                    "delivery_rate": c.delivery_rate,
                    "stops": run.stops,
                    "restarts": run.restarts,
                    "skips": run.skips,
                }
            )
    return rows


def table_csv(metrics: CampaignMetrics) -> str:
    """The Monitor table as CSV (a header line, then ``table_rows``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table_rows(metrics))
    return out.getvalue()


def summary(metrics: CampaignMetrics) -> dict[str, Any]:
    """Everything but the table, JSON-ready: range, status mix, totals, interventions, work-list waits."""
    return {
        "dag_id": metrics.dag_id,
        "limit": metrics.limit,
        "from": metrics.since.isoformat() if metrics.since else None,
        "to": metrics.until.isoformat() if metrics.until else None,
        "status_mix": metrics.status_mix,
        "totals": [{**asdict(c), "delivery_rate": c.delivery_rate} for c in metrics.totals],
        "interventions": [{**asdict(i), "created_at": i.created_at.isoformat()} for i in metrics.interventions],
        "worklist_resolved": metrics.worklist_resolved,
        "worklist_open": metrics.worklist_open,
        "resolve_median_seconds": metrics.resolve_median_seconds,
        "resolve_worst_seconds": metrics.resolve_worst_seconds,
    }


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


@provide_session
def overview(*, dag_ids: Collection[str] | None = None, session: Session = NEW_SESSION) -> Overview:
    """Across campaigns (only ``dag_ids`` when given; the outbox is everyone's), in a constant number of queries.

    Messages count toward the day their channel task last reported progress (midnight UTC starts a day).
    """
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = {"sent_today": 0, "failed_today": 0, "sent_7_days": 0, "failed_7_days": 0}
    for dag_id, pushed_at, report in tasks.progress_since(
        get_settings().campaign_tag, now - timedelta(days=7), session
    ):
        if dag_ids is not None and dag_id not in dag_ids:
            continue
        sent, failed = (_count(report.value.get(key)) for key in ("sent", "failed"))
        week["sent_7_days"] += sent
        week["failed_7_days"] += failed
        if pushed_at >= today:
            week["sent_today"] += sent
            week["failed_today"] += failed
    backlog, oldest = outbox_backlog(session)
    return Overview(
        **week,
        open_worklist=_open_worklist(dag_ids, session),
        stuck_runs=_stuck_runs(dag_ids, now, session),
        stuck_after_seconds=int(stuck_after().total_seconds()),
        outbox_backlog=backlog,
        oldest_pending_seconds=round((now - oldest).total_seconds(), 3) if oldest is not None else None,
        generated_at=now,
    )


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
