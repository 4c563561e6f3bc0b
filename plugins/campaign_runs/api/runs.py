"""The campaigns, runs, Stop / Restart / Skip and work-list routes of the JSON API, included by ``api.app``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status

from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import acting_as, authorized_dag_ids, is_worklist_admin, user_name
from campaign_runs.api.errors import ACTION_ERRORS, READ_ERRORS, responses
from campaign_runs.api.schemas import (
    ActionBody,
    ActionResultOut,
    CampaignCollection,
    CampaignDetailOut,
    CampaignOut,
    ReassignBody,
    RunDetailOut,
    RunScheduleOut,
    WorklistItemOut,
    WorklistOut,
)
from campaign_runs.domain import ID_MAX, NotFoundError, RunStatus

router = APIRouter()

# ---------------------------------------------------------------- dependencies


def _sane_ids(request: Request) -> None:
    """Refuse ids no DAG or run can have before anything queries the database with them."""
    for name in ("dag_id", "run_id"):
        value = request.path_params.get(name)
        if value is not None and ("\x00" in value or len(value) > ID_MAX):
            raise NotFoundError(f"No {name.replace('_id', '')} has the id {value[:40]!r}.")


def _access(method: str, entity: DagAccessEntity | None = None) -> list[Any]:
    return [Depends(_sane_ids), Depends(requires_access_dag(method, entity))]  # type: ignore[arg-type]


DagId = Annotated[str, Path(description="The campaign's id (its DAG id).", max_length=ID_MAX)]
RunId = Annotated[str, Path(description="The run's id (its DAG run id; the emails' work id).", max_length=ID_MAX)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        description=(
            "Repeat the same request (action, run, note, options) with the same key to get the first result; "
            "nothing is done twice. The same key with another request is refused (422, "
            "`idempotency_key_reused`). Keys expire after `[campaign_runs] idempotency_key_ttl_hours` "
            "(default 24): the same key then starts a new action."
        ),
    ),
]


def _readable_dag_ids(user: Any) -> set[str]:
    return authorized_dag_ids(user, "GET")


# ---------------------------------------------------------------- campaigns


@router.get(
    "/campaigns",
    response_model=CampaignCollection,
    responses=responses(401, 403, 422),
    dependencies=_access("GET"),
    summary="List campaigns",
    operation_id="list_campaigns",
)
def list_campaigns(
    user: GetUserDep,
    search: Annotated[str | None, Query(max_length=ID_MAX, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CampaignCollection:
    """Campaigns the caller may read, with schedule, next run, last status and counts."""
    from campaign_runs import core

    summaries, total = core.list_campaigns(
        search=search, dag_ids=sorted(_readable_dag_ids(user)), limit=limit, offset=offset
    )
    return CampaignCollection(campaigns=[CampaignOut.of(s) for s in summaries], total_entries=total)


@router.get(
    "/campaigns/{dag_id}",
    response_model=CampaignDetailOut,
    responses=READ_ERRORS,
    dependencies=_access("GET"),
    summary="Get a campaign",
    operation_id="get_campaign",
)
def get_campaign(dag_id: DagId) -> CampaignDetailOut:
    """A campaign's About information."""
    from campaign_runs import core

    detail = core.get_campaign(dag_id)
    return CampaignDetailOut.of(detail, detail.summary)


@router.get(
    "/campaigns/{dag_id}/runs",
    response_model=RunScheduleOut,
    responses=READ_ERRORS,
    dependencies=_access("GET", DagAccessEntity.RUN),
    summary="Get a campaign's run schedule",
    operation_id="get_run_schedule",
)
def get_run_schedule(
    dag_id: DagId,
    page: Annotated[int, Query(ge=1, le=100_000, description="Page of past runs, 1 is the newest.")] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=100, description="Past runs per page.")] = None,
    upcoming: Annotated[int | None, Query(ge=0, le=100, description="How many upcoming slots (page 1).")] = None,
    status_filter: Annotated[
        list[RunStatus] | None,
        Query(alias="status", description="Only runs with these statuses; `scheduled` selects upcoming slots."),
    ] = None,
    include_skipped: Annotated[bool, Query(description="Also list skipped runs.")] = False,
) -> RunScheduleOut:
    """Upcoming slots from the timetable, then a page of past runs, newest first."""
    from campaign_runs import core

    schedule = core.run_schedule(
        dag_id,
        page=page,
        page_size=page_size,
        upcoming=upcoming,
        include_skipped=include_skipped,
        statuses=[s.value for s in status_filter or []],
    )
    return RunScheduleOut.of(schedule)


@router.get(
    "/campaigns/{dag_id}/runs/{run_id}",
    response_model=RunDetailOut,
    responses=READ_ERRORS,
    dependencies=_access("GET", DagAccessEntity.RUN),
    summary="Get a run with progress, tasks and history",
    operation_id="get_run",
)
def get_run(dag_id: DagId, run_id: RunId) -> RunDetailOut:
    """A run: status, progress per channel, tasks and every action taken on it."""
    from campaign_runs import core

    details = core.run_details(dag_id, run_id)
    return RunDetailOut.of(details, details.run)


# ---------------------------------------------------------------- actions


def _action_route(action: str, summary: str, description: str) -> Callable[..., ActionResultOut]:
    def act(
        dag_id: DagId,
        run_id: RunId,
        body: ActionBody,
        user: GetUserDep,
        idempotency_key: IdempotencyKey = None,
    ) -> ActionResultOut:
        from campaign_runs import core

        with acting_as(user) as actor:
            result = core.perform(
                action,
                dag_id,
                run_id,
                actor=actor,
                note=body.note,
                unpause=action == "restart" and body.unpause,
                resend_in_doubt=action == "restart" and body.resend_in_doubt,
                params=body.params,
                idempotency_key=idempotency_key,
            )
        return ActionResultOut.of(result)

    act.__name__ = f"{action}_run"
    act.__doc__ = description
    router.post(
        f"/campaigns/{{dag_id}}/runs/{{run_id}}/{action}",
        response_model=ActionResultOut,
        responses=ACTION_ERRORS,
        # Changing a run needs edit rights on the DAG's runs; a restart also creates one (the pages' rule).
        dependencies=_access("PUT", DagAccessEntity.RUN)
        + ([Depends(requires_access_dag("POST", DagAccessEntity.RUN))] if action == "restart" else []),
        summary=summary,
        operation_id=f"{action}_run",
    )(act)
    return act


stop_run = _action_route(
    "stop",
    "Stop a run",
    "Stop a queued or running run. It reads `stopping` until its tasks have ended, then `stopped`; "
    "it then goes to the caller's work list and the caller gets an email.",
)
restart_run = _action_route(
    "restart",
    "Restart a run",
    "Mark a failed or stopped run skipped and start a new run for the same slot (`new_run_id`); email. "
    "A paused campaign gives 409 unless `unpause` is true.",
)
skip_run = _action_route("skip", "Skip a run", "Mark a failed or stopped run skipped; the schedule goes on; email.")


@router.post(
    "/campaigns/{dag_id}/runs/{run_id}/reassign",
    response_model=WorklistItemOut,
    responses=ACTION_ERRORS,
    dependencies=_access("PUT", DagAccessEntity.RUN),
    summary="Reassign a run's work-list entry",
    operation_id="reassign_run",
)
def reassign_run(dag_id: DagId, run_id: RunId, body: ReassignBody, user: GetUserDep) -> WorklistItemOut:
    """Give the run's open work-list entry to another user (work-list administrators only, as in the pages)."""
    from campaign_runs import core

    with acting_as(user) as actor:
        item = core.reassign(dag_id, run_id, to_user=body.to, actor=actor, note=body.note)
    return WorklistItemOut.of(item)


# ---------------------------------------------------------------- work list


@router.get(
    "/worklist",
    response_model=WorklistOut,
    responses=responses(401, 403, 422),
    summary="Get a work list",
    operation_id="get_worklist",
)
def get_worklist(
    user: GetUserDep,
    all_users: Annotated[bool, Query(alias="all", description="Everyone's entries (admins only).")] = False,
    include_resolved: Annotated[bool, Query(description="Also resolved entries.")] = False,
) -> WorklistOut:
    """The caller's work list (runs of campaigns the caller may read), newest first."""
    from fastapi import HTTPException

    from campaign_runs import core

    if all_users and not is_worklist_admin(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only administrators may see everyone's work list.")
    readable = _readable_dag_ids(user)
    items = [
        i
        for i in core.worklist(None if all_users else user_name(user), include_resolved=include_resolved)
        if i.dag_id in readable
    ]
    return WorklistOut(items=[WorklistItemOut.of(i) for i in items], total_entries=len(items))
