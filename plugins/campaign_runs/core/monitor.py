"""Monitor: delivery per run and channel, durations, statuses and interventions across a campaign's runs.

Finished runs' numbers come from their durable summaries (``core.summaries``), the others' (still going, or
ended but not summarised yet) from the progress each ``send_<channel>`` task publishes to XCom, both read for
all listed runs in one query each; with Airflow's DagRun rows and the plugin's own history and work list,
a constant number of statements whatever the number of runs.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from campaign_runs.adapters import dags, runs, tasks
from campaign_runs.adapters import summaries as stored_runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import date_range, records, summaries
from campaign_runs.core.campaigns import require_campaign
from campaign_runs.core.channel_delivery import dry_run_channels, run_deliveries
from campaign_runs.core.overview import Overview, StuckRun, outbox_backlog, overview, stuck_after
from campaign_runs.core.progress import channel_progress
from campaign_runs.core.reconcile import applied_status, belongs
from campaign_runs.domain import (
    Action,
    InvalidOptionError,
    NotACampaignError,
    RecordStatus,
    derive_status,
    skipped_text,
)
from campaign_runs.settings import get_settings
from campaign_runs.tables import run_action, worklist_entry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

LIMITS = (10, 30, 100)
MAX_LIMIT = max(LIMITS)
STATUS_MIX = ("completed", "failed", "stopped", "skipped")
INTERVENTIONS = (Action.STOP, Action.RESTART, Action.SKIP, Action.REASSIGN)
TABLE_COLUMNS: tuple[str, ...] = ("run_id", "status", "run_after", "duration_seconds", "channel", "delivery")
TABLE_COLUMNS += ("sent", "failed", "in_doubt", "suppressed", "skipped", "total", "delivery_rate")
TABLE_COLUMNS += ("stops", "restarts", "skips")
__all__ = ["Overview", "StuckRun", "outbox_backlog", "overview", "stuck_after"]  # the overview, in core.overview


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
    suppressed: int = 0  # on the suppression list when their message was due: not in ``total``
    skipped: dict[str, int] = field(default_factory=dict)  # snapshot rows the channel skipped, by reason
    delivery: str = ""  # smtp, sns (dry run), dry run (``core.channel_delivery``); runs added up: each one's
    dry_run: bool = False  # nothing was sent (every run added up was a dry run on this channel)

    @property
    def skipped_text(self) -> str:
        """Skipped rows in words: ``3 (no consent: 2, invalid address: 1)``."""
        return skipped_text(self.skipped)

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


def _channels(reports: list[tasks.ProgressReport], declared: list[str]) -> list[ChannelNumbers]:
    return [
        ChannelNumbers(
            p.channel, p.sent or 0, p.failed or 0, p.in_doubt or 0, p.total or 0, p.suppressed or 0, p.skipped or {}
        )
        for p in channel_progress(declared, reports, [])
    ]


def _stored_channels(summary: summaries.StoredRun, declared: list[str]) -> list[ChannelNumbers]:
    """A summary's channels in the order of ``channel_progress``: declared ones, then others that reported."""
    names = [*declared, *sorted(set(summary.channels) - set(declared))]
    return [ChannelNumbers(name, *summary.channels.get(name, (0, 0, 0, 0, 0, {}))) for name in names]


def _numbers(
    dag_id: str, dag_runs: list[runs.DagRunInfo], tags: list[str], session: Session
) -> dict[str, list[ChannelNumbers]]:
    """Each run's channels: from its summary when fresh, else from XCom (one query each); with their delivery."""
    declared = _tagged("channel", tags)
    kept = summaries.stored(dag_id, [dr.run_id for dr in dag_runs], session)
    live = [dr.run_id for dr in dag_runs if not summaries.is_fresh(kept.get(dr.run_id), dr)]
    reports = tasks.progress_reports_of(dag_id, live, session)
    found = {run_id: _channels(reports.get(run_id, []), declared) for run_id in live}
    for dr in dag_runs:
        if dr.run_id not in found:
            found[dr.run_id] = _stored_channels(kept[dr.run_id], declared)
    frozen = tasks.audience_results_of(dag_id, list(found), session)  # the channels as each run froze them
    dry_tagged = dry_run_channels(tags, declared)
    for run_id, channels in found.items():
        how = run_deliveries(declared, dry_tagged, frozen.get(run_id))
        found[run_id] = [
            replace(c, delivery=how[c.channel].label, dry_run=how[c.channel].dry_run) if c.channel in how else c
            for c in channels
        ]
    return found


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


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start is not None and end is not None else None


def _totals(found: list[RunMetrics]) -> list[ChannelNumbers]:
    sums: dict[str, list[int]] = {}  # channel -> sent, failed, in doubt, total, suppressed
    skipped: dict[str, dict[str, int]] = {}
    labels: dict[str, dict[str, bool]] = {}  # channel -> each delivery its runs had (label -> dry run)
    for run in found:
        for c in run.channels:
            labels.setdefault(c.channel, {})[c.delivery] = c.dry_run
            entry = sums.setdefault(c.channel, [0, 0, 0, 0, 0])
            for i, value in enumerate((c.sent, c.failed, c.in_doubt, c.total, c.suppressed)):
                entry[i] += value
            reasons = skipped.setdefault(c.channel, {})
            for reason, count in c.skipped.items():
                reasons[reason] = reasons.get(reason, 0) + count
    return [
        ChannelNumbers(
            name,
            *(sent, failed, in_doubt, total, suppressed, skipped[name]),
            delivery=" / ".join(sorted(label for label in labels[name] if label)),
            dry_run=all(labels[name].values()),
        )
        for name, (sent, failed, in_doubt, total, suppressed) in sums.items()
    ]


def _campaign_tags(dag_id: str, session: Session) -> list[str]:
    """The campaign's tags (its channels, its dry runs), in one query; other ids raise as ``require_campaign`` does."""
    tags = dags.tags_of([dag_id], session).get(dag_id, [])
    if get_settings().campaign_tag not in tags:  # a tag is only ever on an existing DAG
        require_campaign(dag_id, session)
        raise NotACampaignError(f"DAG {dag_id!r} is not a campaign.")
    return tags


def _tagged(prefix: str, tags: list[str]) -> list[str]:
    return [t.split(":", 1)[1] for t in tags if t.startswith(f"{prefix}:")]


def _shown(dag_id: str, dag_runs: list[runs.DagRunInfo], session: Session) -> dict[str, tuple[str, str | None]]:
    """Each run's displayed status and the run it restarts (``run_views`` without task counts and notes)."""
    found = records.records(dag_id, [dr.run_id for dr in dag_runs], session)
    kept = {dr.run_id: found[dr.run_id] for dr in dag_runs if belongs(found.get(dr.run_id), dr)}
    applied = {dr.run_id: applied_status(kept.get(dr.run_id), dr) for dr in dag_runs}
    stopping = [run_id for run_id, status in applied.items() if status == RecordStatus.STOPPING]
    running = runs.running_task_counts(dag_id, stopping, session)
    return {
        dr.run_id: (
            derive_status(dr.state, applied[dr.run_id], running.get(dr.run_id, 0)).value,
            kept[dr.run_id].restart_of_run_id if dr.run_id in kept else None,
        )
        for dr in dag_runs
    }


def _run(
    dr: runs.DagRunInfo, shown: tuple[str, str | None], channels: list[ChannelNumbers], acts: list[Intervention]
) -> RunMetrics:
    acted = [i.action for i in acts if i.run_id == dr.run_id]
    return RunMetrics(
        run_id=dr.run_id,
        status=shown[0],
        run_after=dr.run_after,
        start_date=dr.start_date,
        end_date=dr.end_date,
        duration_seconds=_duration(dr.start_date, dr.end_date),
        channels=channels,
        stops=acted.count(Action.STOP.value),
        restarts=acted.count(Action.RESTART.value),
        skips=acted.count(Action.SKIP.value),
        restart_of=shown[1],
    )


@provide_session
def campaign_metrics(
    dag_id: str,
    *,
    limit: int = LIMITS[0],
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    session: Session = NEW_SESSION,
) -> CampaignMetrics:
    """The campaign's newest ``limit`` runs (run_after from ``since`` to ``until``, ``core.date_range``'s rule).

    The metrics keep the range as ``[since, until)``; a refused range raises ``DateRangeError``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidOptionError(f"limit must be between 1 and {MAX_LIMIT}.")
    since, until = date_range.bounds(since, until)
    tags = _campaign_tags(dag_id, session)
    dag_runs = stored_runs.recent_runs(dag_id, since=since, until=until, limit=limit, session=session)
    run_ids = [dr.run_id for dr in dag_runs]
    shown = _shown(dag_id, dag_runs, session)
    numbers = _numbers(dag_id, dag_runs, tags, session)
    interventions = _interventions(dag_id, run_ids, session)
    waits, still_open = _resolution(dag_id, run_ids, session)
    found = [_run(dr, shown[dr.run_id], numbers[dr.run_id], interventions) for dr in dag_runs]
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
                    "delivery": c.delivery,
                    "sent": c.sent,
                    "failed": c.failed,
                    "in_doubt": c.in_doubt,
                    "suppressed": c.suppressed,
                    "skipped": c.skipped,
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
    writer.writerows({**row, "skipped": json.dumps(row["skipped"], sort_keys=True)} for row in table_rows(metrics))
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
