"""New, Configure and the campaign actions in the JSON API (``/campaign-runs/definitions/...``, ``/campaigns/...``).

Creating (POST) and configuring (PUT) a campaign need the "Campaign Definitions" permission; configuring and
the campaign actions also need edit rights on the campaign's runs (as in the pages), and Run now needs to
create runs.
Configure is optimistic: send the ``sha`` (or ``ETag``) of the version you edited as ``base_sha`` (or
``If-Match``); a save over someone else's newer one is refused with 409, their ``changes``, your changes
applied on top of theirs field by field (``merged``) and the fields you both changed (``conflicts``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response, status

from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import acting_as, may_access_runs, user_name
from campaign_runs.api.audience import router as audience_router
from campaign_runs.api.definition_schemas import (
    CampaignAction,
    CampaignActionBody,
    CampaignActionOut,
    ConfigureBody,
    CreateBody,
    DagId,
    DefinitionBody,
    DefinitionErrorResponse,
    DefinitionOut,
    DefinitionSchemaOut,
    HistoryOut,
    PreviewBody,
    PreviewOut,
    SavedOut,
    ValidOut,
    VersionEntryOut,
    sane_dag_id,
)
from campaign_runs.api.schemas import ErrorResponse
from campaign_runs.api.trials import router as trials_router
from campaign_runs.domain import ConflictError, InvalidOptionError, NotPermittedError

router = APIRouter()

_TEXT = {
    401: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    403: 'Authenticated, but not allowed: creating and configuring campaigns needs the "Campaign Definitions" '
    "permission; configuring and the campaign actions also need edit rights on the campaign's runs.",
    404: "Unknown campaign.",
    409: "The id clashes with an existing DAG or campaign file; the campaign is written in Python (read-only); "
    "someone saved it since your version (`changes`, `current_sha`, your changes on top of theirs in `merged`, the "
    "fields you both changed in `conflicts`; nothing saved); or its state does not allow the action.",
    422: "An invalid definition (`field` names what is wrong), body or option, or a refused note.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": DefinitionErrorResponse if code in (409, 422) else ErrorResponse, "description": _TEXT[code]}
        for code in codes
    }


def _may_manage(method: str) -> Any:
    """A dependency: the caller has the "Campaign Definitions" permission for ``method`` (POST, PUT)."""

    def check(user: GetUserDep) -> None:
        from campaign_runs.core.definition_rights import may_manage, refusal

        if not may_manage(user, method):
            raise NotPermittedError(refusal(user_name(user), method))

    return Depends(check)


# ---------------------------------------------------------------- definitions


@router.get(
    "/definitions/schema",
    response_model=DefinitionSchemaOut,
    responses=_errors(401, 403, 422),
    dependencies=[Depends(requires_access_dag("GET"))],
    summary="Get the JSON Schema of a campaign definition",
    operation_id="get_definition_schema",
)
def get_definition_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a campaign YAML file; also `components/schemas/CampaignDefinition`."""
    from campaign_runs.core.definition_schema import definition_schema

    return definition_schema()


@router.post(
    "/definitions/validate",
    response_model=ValidOut,
    responses=_errors(401, 403, 422),
    dependencies=[Depends(requires_access_dag("GET"))],
    summary="Validate a campaign definition",
    operation_id="validate_definition",
)
def validate_definition(body: DefinitionBody) -> ValidOut:
    """Check a definition as the dag-processor will load it and that its audience reads; 422 names the `field`."""
    from campaign_runs.core.definition_text import validate_definition as validate

    dag_id, _ = validate(body.text())
    return ValidOut(dag_id=dag_id, valid=True)


@router.post(
    "/definitions/preview",
    response_model=PreviewOut,
    responses=_errors(401, 403, 422),
    dependencies=[Depends(requires_access_dag("GET"))],
    summary="Preview a schedule",
    operation_id="preview_schedule",
)
def preview_schedule(body: PreviewBody) -> PreviewOut:
    """The cron in plain words and its next fire times in the timezone and in UTC (correct across DST)."""
    from campaign_runs.core.definition_status import preview_schedule as preview

    return PreviewOut.of(preview(body.cron, body.timezone, count=body.count))


@router.post(
    "/campaigns",
    status_code=status.HTTP_201_CREATED,
    response_model=SavedOut,
    responses={
        200: {"model": SavedOut, "description": "Read-only definitions folder: nothing written; commit `yaml`."},
        **_errors(401, 403, 409, 422),
    },
    dependencies=[_may_manage("POST")],
    summary="Create a campaign",
    operation_id="create_campaign",
)
def create_campaign(body: CreateBody, user: GetUserDep, response: Response) -> SavedOut:
    """New: validate, refuse an id that clashes, write `<id>.yaml` and record version 1 (201)."""
    from campaign_runs.core.definitions import create_definition

    text = body.text()
    with acting_as(user) as actor:
        saved = create_definition(text, actor=actor, note=body.note)
    if not saved.written:
        response.status_code = status.HTTP_200_OK
    return SavedOut.of(saved)


@router.get(
    "/campaigns/{dag_id}/definition",
    response_model=DefinitionOut,
    responses={
        200: {"description": "The definition.", "headers": {"ETag": {"description": "The quoted `sha`."}}},
        **_errors(401, 403, 404, 422),
    },
    dependencies=[Depends(sane_dag_id), Depends(requires_access_dag("GET"))],
    summary="Get a campaign's definition",
    operation_id="get_campaign_definition",
)
def get_campaign_definition(dag_id: DagId, response: Response) -> DefinitionOut:
    """The campaign's YAML, its `sha` (and `ETag`), version, and whether Configure may edit it (and why not)."""
    from campaign_runs.core.definitions import definition_of

    state = definition_of(dag_id)
    if state.sha:
        response.headers["ETag"] = f'"{state.sha}"'
    return DefinitionOut.of(state)


def _base_sha(body: ConfigureBody, if_match: str | None) -> str:
    base = body.base_sha or (if_match or "").strip().removeprefix("W/").strip('"')
    if not base:
        raise InvalidOptionError("Say which version you edited: `base_sha`, or the `If-Match` header (its ETag).")
    return base


@router.put(
    "/campaigns/{dag_id}/definition",
    response_model=SavedOut,
    responses=_errors(401, 403, 404, 409, 422),
    dependencies=[Depends(sane_dag_id), _may_manage("PUT"), Depends(requires_access_dag("PUT", DagAccessEntity.RUN))],
    summary="Configure a campaign",
    operation_id="configure_campaign",
)
def configure_campaign(
    dag_id: DagId,
    body: ConfigureBody,
    user: GetUserDep,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=200)] = None,
) -> SavedOut:
    """Save a new version (the whole `yaml`, or `set` changes) if nobody saved since `base_sha` / `If-Match`."""
    from campaign_runs.core.definitions import apply_settings, definition_of, update_definition

    base_sha = _base_sha(body, if_match)
    if (body.yaml is None) == (body.assignments is None):
        raise InvalidOptionError("Send either the whole `yaml` or `set` changes, not both or neither.")
    text = body.yaml
    if text is None:
        state = definition_of(dag_id)
        if state.text is None:
            raise ConflictError(state.reason)
        text = apply_settings(state.text, list(body.assignments or []))
    with acting_as(user) as actor:
        return SavedOut.of(update_definition(dag_id, text, base_sha=base_sha, actor=actor, note=body.note))


@router.get(
    "/campaigns/{dag_id}/history",
    response_model=HistoryOut,
    responses=_errors(401, 403, 404, 422),
    dependencies=[Depends(sane_dag_id), Depends(requires_access_dag("GET"))],
    summary="Get a campaign's versions and actions",
    operation_id="get_campaign_history",
)
def get_campaign_history(dag_id: DagId) -> HistoryOut:
    """Saved versions (who, when, note, diff) and campaign actions, newest first."""
    from campaign_runs.core.definitions import history

    return HistoryOut(dag_id=dag_id, entries=[VersionEntryOut.of(entry) for entry in history(dag_id)])


# ---------------------------------------------------------------- campaign actions


def _may_create_runs(action: CampaignAction, dag_id: DagId, user: GetUserDep) -> None:
    """Run now also creates a run: it needs create rights on the campaign's runs."""
    if action is CampaignAction.RUN_NOW and not may_access_runs(user, "POST", dag_id):
        raise NotPermittedError(f"User {user_name(user)!r} may not start runs of {dag_id!r}.")


@router.post(
    "/campaigns/{dag_id}/actions/{action}",
    response_model=CampaignActionOut,
    responses=_errors(401, 403, 404, 409, 422),
    dependencies=[
        Depends(sane_dag_id),
        Depends(requires_access_dag("PUT", DagAccessEntity.RUN)),
        Depends(_may_create_runs),
    ],
    summary="Run now, pause, resume or stop all runs of a campaign",
    operation_id="campaign_action",
)
def campaign_action(dag_id: DagId, action: CampaignAction, body: CampaignActionBody, user: GetUserDep) -> Any:
    """Run now (`conf`: params overrides), pause, resume (`missed`: all, latest, none) or stop every active run."""
    from campaign_runs.core.campaign_actions import perform_campaign_action

    with acting_as(user) as actor:
        result = perform_campaign_action(
            action.value, dag_id, actor=actor, note=body.note, conf=body.conf, missed=body.missed
        )
    return CampaignActionOut.of(result)


router.include_router(audience_router)  # GET /campaigns/{dag_id}/audience
router.include_router(trials_router)  # POST /campaigns/{dag_id}/check and /test-send
