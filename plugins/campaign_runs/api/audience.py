"""The audience preview of the JSON API (``GET /campaign-runs/campaigns/{dag_id}/audience``), in ``api.app``.

Reading it needs read access to the campaign's DAG, as reading the campaign does. The source is read now, as a
run started now would read it; nothing is written and nothing is sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from campaign_runs.adapters.api_security import requires_access_dag
from campaign_runs.api.definition_schemas import DagId, DefinitionErrorResponse, sane_dag_id
from campaign_runs.api.schemas import ErrorResponse

router = APIRouter()

_TEXT = {
    401: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    403: "Authenticated, but not allowed to read this campaign.",
    404: "Unknown campaign.",
    409: "The campaign is written in Python, not in YAML: its audience cannot be read here.",
    422: "The source cannot be read (`field` names the setting; the detail is the database's or the file's "
    "message), the campaign's YAML is invalid, or a limit outside 0..100.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": DefinitionErrorResponse if code == 422 else ErrorResponse, "description": _TEXT[code]}
        for code in codes
    }


class PreviewRowOut(BaseModel):
    """One row of the source as a run would take it."""

    position: int
    id: str = Field(description="The recipient id (`#<position>` when the row has none).")
    email: str
    phone: str
    push_token: str
    skipped: dict[str, str | None] = Field(
        description="Per channel: why a run would skip the row (`no_id`, `invalid_address`, `no_address`, "
        "`no_consent`), null when it would send to it. Duplicates are only found by a run."
    )
    fields: dict[str, Any] = Field(description="The template values: the source's columns and mapped fields.")


class PreviewMessageOut(BaseModel):
    """The message a channel would send to its first recipient."""

    channel: str
    recipient: str
    position: int
    content: dict[str, str] = Field(description="email: `subject`, `body`; sms: `sender`, `text`; push: ...")


class AudiencePreviewOut(BaseModel):
    """A campaign's audience read now: nothing written, nothing sent."""

    campaign: str
    source: str = Field(description="`sql`, `file` or `demo`.")
    label: str = Field(description="Where the rows come from, e.g. `demo audience (synthetic)`.")
    count: int = Field(description="Every row of the source.")
    columns: list[str]
    rows: list[PreviewRowOut]
    sendable: dict[str, int] = Field(description="Per channel: rows not skipped (before duplicates).")
    skipped: dict[str, dict[str, int]] = Field(description="Per channel: rows skipped, by reason.")
    messages: list[PreviewMessageOut]
    problems: list[str] = Field(description="Mappings or placeholders naming a column the source lacks.")


@router.get(
    "/campaigns/{dag_id}/audience",
    response_model=AudiencePreviewOut,
    responses=_errors(401, 403, 404, 409, 422),
    dependencies=[Depends(sane_dag_id), Depends(requires_access_dag("GET"))],
    summary="Preview a campaign's audience",
    operation_id="preview_campaign_audience",
)
def preview_campaign_audience(
    dag_id: DagId,
    limit: Annotated[int, Query(ge=0, le=100, description="Rows to show; every row is counted.")] = 10,
) -> AudiencePreviewOut:
    """Row count, the first `limit` rows with what a run would skip, and one message per channel."""
    from campaign_runs.core.audiences import preview_campaign

    return AudiencePreviewOut.model_validate(preview_campaign(dag_id, limit=limit).as_dict())
