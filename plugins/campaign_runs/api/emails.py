"""The outbox routes of the JSON API (``/campaign-runs/emails/...``), included by ``api.app``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from campaign_runs.adapters.api_security import GetUserDep
from campaign_runs.adapters.auth import acting_as, is_worklist_admin
from campaign_runs.api.schemas import EmailOut, ErrorResponse

router = APIRouter()

_RESEND_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`."),
        (403, "Authenticated, but not an administrator."),
        (404, "Unknown email."),
        (409, "The email is not failed or undeliverable, or its user still has no email address."),
        (422, "Invalid email id."),
    )
}


@router.post(
    "/emails/{outbox_id}/resend",
    response_model=EmailOut,
    responses=_RESEND_ERRORS,
    summary="Resend a failed or undeliverable email",
    operation_id="resend_email",
)
def resend_email(
    outbox_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The email's id in the outbox.")],
    user: GetUserDep,
) -> EmailOut:
    """Put a failed or undeliverable email back to pending, attempts reset, and send it (administrators only).

    The address is read again from the user store; the resend is kept in the run's history.
    """
    from campaign_runs.core.emails import resend_email as resend

    if not is_worklist_admin(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only administrators may resend emails.")
    with acting_as(user) as actor:
        return EmailOut.of(resend(outbox_id, actor))
