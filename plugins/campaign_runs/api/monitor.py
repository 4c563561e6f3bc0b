"""The Monitor routes of the JSON API (``/campaign-runs/campaigns/{dag_id}/metrics``, ``/overview``), in ``api.app``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import authorized_dag_ids
from campaign_runs.api.from_dto import DtoModel, FromDto
from campaign_runs.api.schemas import ErrorResponse
from campaign_runs.core.monitor import CampaignMetrics, ChannelNumbers, Intervention, RunMetrics
from campaign_runs.core.overview import Overview, StuckRun
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


# The response models take their fields from the core's dataclasses (``api.from_dto``).


class ChannelNumbersOut(DtoModel, dto=ChannelNumbers):
    """Messages of one channel."""

    suppressed: FromDto = Field(description="On the suppression list when their message was due; not in total.")
    skipped: FromDto = Field(
        description="Rows of the runs' audience snapshots the channel did not send to, by reason: no_id, "
        "invalid_address, no_address, no_consent, duplicate.",
    )
    delivery: FromDto = Field(
        description="How the channel delivered: its transport (`smtp`, `sns`...), `dry run` or `<transport> (dry run)`"
        ", as the run froze it; totals join the runs' different ones with ` / `.",
    )
    dry_run: FromDto = Field(description="A dry run: nothing was sent (totals: in every run).")
    delivery_rate: FromDto = Field(description="sent / total (0..1); null without recipients.")


class RunMetricsOut(DtoModel, dto=RunMetrics):
    """One run: status, timing, messages per channel and interventions."""

    sent: FromDto
    failed: FromDto


class InterventionOut(DtoModel, dto=Intervention):
    """A Stop, Restart, Skip or Reassign with its note."""


FROM_DOC = "Runs from this day, or from this time (run_after; ISO, UTC unless it names a zone)."
TO_DOC = "Runs to this day, included (so `from` = `to` is one day), or before this time (run_after; ISO, UTC)."


class CampaignMetricsOut(DtoModel, dto=CampaignMetrics):
    """A campaign's runs (newest first) with their numbers, the status mix, interventions and work-list waits."""

    since: FromDto = Field(description="The first moment of the range (included).")
    until: FromDto = Field(description="The first moment after the range: a `to` day ends at its midnight.")


class StuckRunOut(DtoModel, dto=StuckRun):
    """A run stopping for longer than expected."""


class OverviewOut(DtoModel, dto=Overview):
    """Across the campaigns the caller may read; the outbox is everyone's."""


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
    return CampaignMetricsOut.of(campaign_metrics(dag_id, limit=limit, since=first, until=last))


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
    from campaign_runs.core.monitor import overview

    return OverviewOut.of(overview(dag_ids=authorized_dag_ids(user, "GET")))
