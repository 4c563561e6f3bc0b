"""The suppression list in the JSON API (``/campaign-runs/suppressions...``): work-list administrators only.

List (paged, by channel), add, remove, import a CSV file (``channel,address,reason``) and export it. Included by
``api.app`` with the recipients' one-click unsubscribe pages (``api.unsubscribe``), which need no login.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from campaign_runs.adapters.api_security import GetUserDep
from campaign_runs.adapters.auth import acting_as, is_worklist_admin
from campaign_runs.api.schemas import NO_NUL, ErrorResponse
from campaign_runs.api.unsubscribe import router as unsubscribe_router
from campaign_runs.domain import InvalidOptionError

router = APIRouter()
router.include_router(unsubscribe_router)

Channel = Literal["email", "sms", "push"]
Reason = Literal["unsubscribed", "bounced", "complained", "manual", "invalid"]
ADDRESS_MAX = 4096  # the longest push token
CURSOR_MAX = 4200
MAX_IMPORT_BYTES = 5 * 1024 * 1024  # core.suppressions.MAX_IMPORT_BYTES


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        401: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
        403: "Authenticated, but not a work-list administrator.",
        404: "The address is not on the channel's suppression list.",
        422: "An unknown channel or reason; an invalid address, cursor or CSV file (its line named); a file too large.",
    }
    return {code: {"model": ErrorResponse, "description": texts[code]} for code in codes}


class SuppressionOut(BaseModel):
    """One suppressed address on one channel."""

    channel: str
    address: str = Field(description="As compared: an email in lower case, a phone number without punctuation.")
    reason: str = Field(description="`unsubscribed`, `bounced`, `complained`, `manual` or `invalid`.")
    source: str = Field(description="Where it came from: a campaign id (unsubscribe), an SMTP reply (bounce)...")
    actor: str = Field(description="Who added it: a user, `recipient` or `system`.")
    created_at: str = Field(description="When, ISO 8601 in UTC.")


class SuppressionPageOut(BaseModel):
    """A page of the list, the cursor of the next one, and the entries per channel."""

    suppressions: list[SuppressionOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null after the last.")
    counts: dict[str, int] = Field(description="Entries per channel, the whole list.")


class SuppressionBody(BaseModel):
    """An address to suppress on a channel."""

    model_config = ConfigDict(extra="forbid")
    channel: Channel
    address: str = Field(min_length=1, max_length=ADDRESS_MAX, pattern=NO_NUL)
    reason: Reason = "manual"


class SuppressionAddedOut(BaseModel):
    """The address suppressed; ``added`` is false when it already was (its first entry is kept)."""

    channel: str
    address: str
    added: bool


class ImportOut(BaseModel):
    """What an import did: rows added, rows already on the list."""

    added: int
    already_listed: int


def _admin(user: Any) -> None:
    if not is_worklist_admin(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only work-list administrators may manage the suppression list.")


@router.get(
    "/suppressions",
    response_model=SuppressionPageOut,
    responses=_errors(401, 403, 422),
    summary="List suppressed addresses",
    operation_id="list_suppressions",
)
def list_suppressions(
    user: GetUserDep,
    channel: Annotated[Channel | None, Query(description="Only this channel's entries.")] = None,
    after: Annotated[str, Query(max_length=CURSOR_MAX, pattern=NO_NUL, description="`next_after` of a page.")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SuppressionPageOut:
    """Entries by channel, then address (administrators only)."""
    from campaign_runs.core.suppressions import list_suppressions as listed

    _admin(user)
    with acting_as(user) as actor:
        page = listed(actor, channel=channel, after=after, limit=limit)
    return SuppressionPageOut(
        suppressions=[SuppressionOut(**entry.as_dict()) for entry in page.entries],
        next_after=page.next_after,
        counts=page.counts,
    )


@router.post(
    "/suppressions",
    response_model=SuppressionAddedOut,
    responses=_errors(401, 403, 422),
    summary="Suppress an address",
    operation_id="add_suppression",
)
def add_suppression(body: SuppressionBody, user: GetUserDep) -> SuppressionAddedOut:
    """No campaign sends to the address on the channel from its next message on (administrators only)."""
    from campaign_runs.core.suppressions import add_suppression as add

    _admin(user)
    with acting_as(user) as actor:
        added = add(actor, body.channel, body.address, reason=body.reason, source="rest api")
    return SuppressionAddedOut(channel=body.channel, address=body.address, added=added)


@router.delete(
    "/suppressions/{channel}/{address:path}",
    response_model=SuppressionAddedOut,
    responses=_errors(401, 403, 404, 422),
    summary="Take an address off the list",
    operation_id="remove_suppression",
)
def remove_suppression(
    channel: Annotated[Channel, Path()],
    address: Annotated[str, Path(max_length=ADDRESS_MAX, pattern=NO_NUL)],
    user: GetUserDep,
) -> SuppressionAddedOut:
    """Campaigns may send to the address on the channel again (administrators only); `added` is false."""
    from campaign_runs.core.suppressions import remove_suppression as remove

    _admin(user)
    with acting_as(user) as actor:
        remove(actor, channel, address)
    return SuppressionAddedOut(channel=channel, address=address, added=False)


def _import(user: Any, data: bytes) -> tuple[int, int]:
    from campaign_runs.core.suppressions import import_suppressions

    with acting_as(user) as actor:
        return import_suppressions(actor, data, source="rest api import")


@router.post(
    "/suppressions/import",
    response_model=ImportOut,
    responses=_errors(401, 403, 422),
    summary="Import a CSV file of suppressed addresses",
    operation_id="import_suppressions",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "CSV with the header `channel,address,reason` (an export's header too); 5 MiB at most.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_suppressions(request: Request, user: GetUserDep) -> ImportOut:
    """Add every row (administrators only); one bad row, named by its line, and nothing is added."""
    _admin(user)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise InvalidOptionError(f"The file is over {MAX_IMPORT_BYTES} bytes; nothing was imported.")
    added, kept = await run_in_threadpool(_import, user, data)
    return ImportOut(added=added, already_listed=kept)


@router.get(
    "/suppressions/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The whole list as CSV."}, **_errors(401, 403)},
    summary="Export the list as CSV",
    operation_id="export_suppressions",
)
def export_suppressions(user: GetUserDep) -> StreamingResponse:
    """Every entry: `channel,address,reason,source,actor,created_at` (administrators only); importable again."""
    from campaign_runs.core.suppressions import export_suppressions as export

    _admin(user)
    with acting_as(user) as actor:
        lines: Iterator[str] = export(actor)
    headers = {"Content-Disposition": 'attachment; filename="suppressions.csv"'}
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)
