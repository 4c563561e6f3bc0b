"""The caller's own settings in the JSON API (``/campaign-runs/me/...``): the address their emails go to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from campaign_runs.adapters.api_security import GetUserDep
from campaign_runs.adapters.auth import acting_as
from campaign_runs.api.schemas import ErrorResponse

router = APIRouter()


class EmailBody(BaseModel):
    """The address to get emails at; empty clears the one set in Campaign Runs."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=512, description="An email address, or empty to clear it.")


class MyEmailOut(BaseModel):
    """Where the caller's emails go: the address, the link of the chain that gave it, or why none."""

    username: str
    email: str | None = Field(description="The address emails go to; null when none resolves.")
    source: str | None = Field(description="`auth_manager`, `campaign_runs` or `template`.")
    reason: str | None = Field(description="Why no email can be sent (null when one can).")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`."),
        (403, "The token is not valid."),
        (422, "Not an email address, or an invalid body."),
    )
}


def _out(found: Any) -> MyEmailOut:
    return MyEmailOut(username=found.username, email=found.address, source=found.source, reason=found.reason)


@router.get(
    "/me/email", response_model=MyEmailOut, responses=_ERRORS, summary="Where my emails go", operation_id="get_my_email"
)
def get_my_email(user: GetUserDep) -> MyEmailOut:
    """The caller's email address by the chain: auth manager, set in Campaign Runs, `user_email_template`."""
    from campaign_runs.core.users import email_of

    with acting_as(user) as username:
        return _out(email_of(username))


@router.put(
    "/me/email",
    response_model=MyEmailOut,
    responses=_ERRORS,
    summary="Set my email address",
    operation_id="set_my_email",
)
def set_my_email(body: EmailBody, user: GetUserDep) -> MyEmailOut:
    """Set the address the caller gets emails at when the auth manager gives none (empty clears it)."""
    from campaign_runs.core.users import set_email

    with acting_as(user) as username:
        return _out(set_email(username, body.email))
