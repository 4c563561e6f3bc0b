"""The Monitor routes of the JSON API (``/campaign-runs/campaigns/{dag_id}/metrics``, ``/overview``), in ``api.app``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import authorized_dag_ids
from campaign_runs.api.schemas import ErrorResponse
from campaign_runs.domain import ID_MAX

router = APIRouter()

_TEXT = {
    401: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    403: "Authenticated, but not allowed to read this campaign's runs.",
    404: "Unknown campaign, or a DAG that is not a campaign.",
    422: "Invalid parameters: a limit outside 1..100, a bad date, or a range that ends before it starts.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _TEXT[code]} for code in codes}


class ChannelNumbersOut(BaseModel):
    """Messages of one channel."""

    channel: str
    sent: int
    failed: int
    in_doubt: int
    total: int
    suppressed: int = Field(default=0, description="On the suppression list when their message was due; not in total.")
    skipped: dict[str, int] = Field(
        default_factory=dict,
        description="Rows of the runs' audience snapshots the channel did not send to, by reason: no_id, "
        "invalid_address, no_address, no_consent, duplicate.",
    )
    delivery_rate: float | None = Field(description="sent / total (0..1); null without recipients.")
    delivery: str = Field(
        default="",
        description="How the channel delivered: its transport (`smtp`, `sns`...), `dry run` or `<transport> (dry run)`"
        ", as the run froze it; totals join the runs' different ones with ` / `.",
    )
    dry_run: bool = Field(default=False, description="A dry run: nothing was sent (totals: in every run).")


class RunMetricsOut(BaseModel):
    """One run: status, timing, messages per channel and interventions."""

    run_id: str
    status: str
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration_seconds: float | None
    sent: int
    failed: int
    channels: list[ChannelNumbersOut]
    stops: int
    restarts: int
    skips: int
    restart_of: str | None


class InterventionOut(BaseModel):
    """A Stop, Restart, Skip or Reassign with its note."""

    run_id: str
    action: str
    actor: str
    note: str
    created_at: datetime
    new_run_id: str | None


FROM_DOC = "Runs from this day, or from this time (run_after; ISO, UTC unless it names a zone)."
TO_DOC = "Runs to this day, included (so `from` = `to` is one day), or before this time (run_after; ISO, UTC)."


class CampaignMetricsOut(BaseModel):
    """A campaign's runs (newest first) with their numbers, the status mix, interventions and work-list waits."""

    dag_id: str
    limit: int
    since: datetime | None = Field(description="The first moment of the range (included).")
    until: datetime | None = Field(description="The first moment after the range: a `to` day ends at its midnight.")
    runs: list[RunMetricsOut]
    totals: list[ChannelNumbersOut]
    status_mix: dict[str, int]
    interventions: list[InterventionOut]
    worklist_resolved: int
    worklist_open: int
    resolve_median_seconds: float | None
    resolve_worst_seconds: float | None


class StuckRunOut(BaseModel):
    """A run stopping for longer than expected."""

    dag_id: str
    run_id: str
    stop_requested_by: str | None
    stop_requested_at: datetime
    stopping_seconds: float


class OverviewOut(BaseModel):
    """Across the campaigns the caller may read; the outbox is everyone's."""

    sent_today: int
    failed_today: int
    sent_7_days: int
    failed_7_days: int
    open_worklist: int
    stuck_runs: list[StuckRunOut]
    stuck_after_seconds: int
    outbox_backlog: int
    oldest_pending_seconds: float | None
    generated_at: datetime


def channel_out(channel: Any) -> ChannelNumbersOut:
    """One ``ChannelNumbers`` as the API answers it."""
    return ChannelNumbersOut(
        channel=channel.channel,
        sent=channel.sent,
        failed=channel.failed,
        in_doubt=channel.in_doubt,
        total=channel.total,
        suppressed=channel.suppressed,
        skipped=channel.skipped,
        delivery_rate=channel.delivery_rate,
        delivery=channel.delivery,
        dry_run=channel.dry_run,
    )


def metrics_out(found: Any) -> CampaignMetricsOut:
    """A ``CampaignMetrics`` as the API (and ``campaigns monitor -o json``) answers it."""
    from dataclasses import asdict

    runs = [
        RunMetricsOut(
            **{k: v for k, v in asdict(run).items() if k != "channels"},
            sent=run.sent,
            failed=run.failed,
            channels=[channel_out(c) for c in run.channels],
        )
        for run in found.runs
    ]
    return CampaignMetricsOut(
        **{k: v for k, v in asdict(found).items() if k not in ("runs", "totals", "interventions")},
        runs=runs,
        totals=[channel_out(c) for c in found.totals],
        interventions=[InterventionOut(**asdict(i)) for i in found.interventions],
    )


@router.get(
    "/campaigns/{dag_id}/metrics",
    response_model=CampaignMetricsOut,
    responses=_errors(401, 403, 404, 422),
    dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    summary="Get a campaign's numbers across its runs",
    operation_id="get_campaign_metrics",
)
def get_campaign_metrics(
    dag_id: Annotated[str, Path(description="The campaign's id (its DAG id).", max_length=ID_MAX)],
    since: Annotated[str | None, Query(alias="from", description=FROM_DOC, examples=["2026-11-01"])] = None,
    until: Annotated[str | None, Query(alias="to", description=TO_DOC, examples=["2026-11-30"])] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="How many of the newest runs (10, 30, 100).")] = 10,
) -> CampaignMetricsOut:
    """Per run and channel: sent, failed, in doubt, suppressed, skipped, total, delivery rate; durations, statuses."""
    from campaign_runs.core.date_range import parse_end
    from campaign_runs.core.monitor import campaign_metrics

    first, last = parse_end("from", since), parse_end("to", until)  # as the Monitor page and the CLI read them
    return metrics_out(campaign_metrics(dag_id, limit=limit, since=first, until=last))


@router.get(
    "/overview",
    response_model=OverviewOut,
    responses=_errors(401, 403, 422),
    dependencies=[Depends(requires_access_dag("GET"))],
    summary="Get the overview across campaigns",
    operation_id="get_overview",
)
def get_overview(user: GetUserDep) -> OverviewOut:
    """Messages sent today and over 7 days, failures, open work, stuck stops, the outbox's backlog and age."""
    from dataclasses import asdict

    from campaign_runs.core.monitor import overview

    return OverviewOut(**asdict(overview(dag_ids=authorized_dag_ids(user, "GET"))))
