"""The Campaign Runs JSON API: a FastAPI app mounted on Airflow's API server under ``/campaign-runs``.

Thin routes: parse input, check Airflow's permissions, call one core function, shape the answer.
Authentication is Airflow's own: the bearer JWT that ``/api/v2`` accepts (``POST /auth/token``) or the
UI's session cookie. Reading needs read access to the campaign's DAG (runs: to its runs); acting needs
edit access to its runs. Errors are ``{"detail": "...", "code": "..."}``. Only the recipients' one-click
unsubscribe pages (``api_unsubscribe``) need no login: their signed token is the credential.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from campaign_runs import __version__
from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import acting_as, authorized_dag_ids, is_worklist_admin, user_name
from campaign_runs.api_definitions import router as definitions_router
from campaign_runs.api_emails import router as emails_router
from campaign_runs.api_models import (
    ID_MAX,
    ActionBody,
    ActionResultOut,
    CampaignCollection,
    CampaignDetailOut,
    CampaignOut,
    ErrorCode,
    ErrorResponse,
    ReassignBody,
    RunDetailOut,
    RunOut,
    RunScheduleOut,
    UpcomingRunOut,
    WorklistItemOut,
    WorklistOut,
)
from campaign_runs.api_monitor import router as monitor_router
from campaign_runs.api_suppressions import router as suppressions_router
from campaign_runs.api_users import router as users_router
from campaign_runs.domain import CampaignRunsError, NotFoundError, RunStatus
from campaign_runs.http_errors import NosniffMiddleware, error_fields, http_status
from campaign_runs.ui_app import ui_app

URL_PREFIX = "/campaign-runs"

_ERROR_TEXT = {
    status.HTTP_401_UNAUTHORIZED: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    status.HTTP_403_FORBIDDEN: "Authenticated, but not allowed to do this.",
    status.HTTP_404_NOT_FOUND: "Unknown campaign, run, user or work-list entry.",
    status.HTTP_409_CONFLICT: "The run's status does not allow this, another action won, or the campaign is paused.",
    status.HTTP_422_UNPROCESSABLE_CONTENT: (
        "Invalid parameters or body, a refused note, or an Idempotency-Key already used for another request."
    ),
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _ERROR_TEXT[code]} for code in codes}


READ_ERRORS = _errors(401, 403, 404, 422)
ACTION_ERRORS = _errors(401, 403, 404, 409, 422)

app = FastAPI(
    title="Campaign Runs API",
    version=__version__,
    description=(
        "Marketing campaigns on Apache Airflow: campaigns, run schedules, Stop / Restart / Skip with "
        "notes, and work lists. Authenticate with the JWT from Airflow's `POST /auth/token` "
        '(`Authorization: Bearer <token>`). Errors are `{"detail": ..., "code": ...}`. Actions accept '
        "an `Idempotency-Key` header: repeating the same request (same action, run, note and options) with "
        "the same key returns the first result; the same key with another request is refused with 422 "
        "(`idempotency_key_reused`). A key is bound to its request for `[campaign_runs] "
        "idempotency_key_ttl_hours` (24 by default); after that it starts a new action."
    ),
)

app.add_middleware(NosniffMiddleware)
for router in (emails_router, users_router, monitor_router, definitions_router, suppressions_router):
    app.include_router(router)
app.mount("/ui", ui_app)  # the campaign pages under auth managers other than FAB's (ui_routes.py)

# ---------------------------------------------------------------- errors


def _problem(status_code: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


@app.exception_handler(CampaignRunsError)
async def _domain_error(request: Request, error: CampaignRunsError) -> JSONResponse:
    return JSONResponse({"detail": str(error), "code": error.code, **error_fields(error)}, http_status(error))


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return _problem(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(parts) or "Invalid request.", "invalid_request")


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    codes = {
        status.HTTP_401_UNAUTHORIZED: ErrorCode.UNAUTHORIZED,
        status.HTTP_403_FORBIDDEN: ErrorCode.FORBIDDEN,
        status.HTTP_404_NOT_FOUND: ErrorCode.NOT_FOUND,
        status.HTTP_405_METHOD_NOT_ALLOWED: ErrorCode.METHOD_NOT_ALLOWED,
    }
    if error.status_code == status.HTTP_400_BAD_REQUEST:  # e.g. a body FastAPI cannot even decode
        return _problem(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error.detail), ErrorCode.INVALID_REQUEST.value)
    code = codes.get(error.status_code, ErrorCode.ERROR)
    headers = dict(error.headers) if error.headers else None
    return _problem(error.status_code, str(error.detail), code.value, headers)


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


# ---------------------------------------------------------------- shaping


def _campaign(summary: Any) -> dict[str, Any]:
    return {"id": summary.dag_id, **{name: getattr(summary, name) for name in CampaignOut.model_fields if name != "id"}}


def _run(run: Any) -> RunOut:
    return RunOut.model_validate(run, from_attributes=True)


def _worklist_item(item: Any) -> WorklistItemOut:
    return WorklistItemOut.model_validate(item, from_attributes=True)


# ---------------------------------------------------------------- campaigns


@app.get(
    "/campaigns",
    response_model=CampaignCollection,
    responses=_errors(401, 403, 422),
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
    return CampaignCollection(campaigns=[CampaignOut(**_campaign(s)) for s in summaries], total_entries=total)


@app.get(
    "/campaigns/{dag_id}",
    response_model=CampaignDetailOut,
    responses=READ_ERRORS,
    dependencies=_access("GET"),
    summary="Get a campaign",
    operation_id="get_campaign",
)
def get_campaign(dag_id: DagId) -> CampaignDetailOut:
    """A campaign's About information."""
    from fastapi.encoders import jsonable_encoder

    from campaign_runs import core

    detail = core.get_campaign(dag_id)
    return CampaignDetailOut(
        **_campaign(detail.summary),
        timezone=detail.timezone,
        doc_md=detail.doc_md,
        params=jsonable_encoder(detail.params),
        tags=detail.tags,
    )


@app.get(
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
    return RunScheduleOut(
        dag_id=dag_id,
        upcoming=[UpcomingRunOut.model_validate(u, from_attributes=True) for u in schedule.upcoming],
        runs=[_run(r) for r in schedule.runs],
        total_entries=schedule.total,
        page=schedule.page,
        page_size=schedule.page_size,
        pages=schedule.pages,
    )


@app.get(
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
    from campaign_runs.presenters import run_details_row

    return RunDetailOut.model_validate(run_details_row(core.run_details(dag_id, run_id)))


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
        from campaign_runs.presenters import action_row

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
        return ActionResultOut(**action_row(result))

    act.__name__ = f"{action}_run"
    act.__doc__ = description
    app.post(
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


@app.post(
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
    return _worklist_item(item)


# ---------------------------------------------------------------- work list


@app.get(
    "/worklist",
    response_model=WorklistOut,
    responses=_errors(401, 403, 422),
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
    return WorklistOut(items=[_worklist_item(i) for i in items], total_entries=len(items))
