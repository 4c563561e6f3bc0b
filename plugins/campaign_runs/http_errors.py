"""One mapping from domain errors to HTTP status codes, for the pages and the REST API alike."""

from __future__ import annotations

from campaign_runs.domain import (
    ActionNotAllowedError,
    CampaignActionNotAllowedError,
    CampaignPausedError,
    CampaignRunsError,
    ConflictError,
    DefinitionConflictError,
    DefinitionInvalidError,
    IdempotencyKeyReusedError,
    InvalidNoteError,
    InvalidOptionError,
    NotFoundError,
    NotPermittedError,
)

STATUS_OF: tuple[tuple[type[CampaignRunsError], int], ...] = (
    (NotFoundError, 404),
    (ActionNotAllowedError, 409),
    (ConflictError, 409),
    (CampaignActionNotAllowedError, 409),
    (CampaignPausedError, 409),
    (InvalidNoteError, 422),
    (DefinitionInvalidError, 422),
    (InvalidOptionError, 422),
    (IdempotencyKeyReusedError, 422),
    (NotPermittedError, 403),
)


def http_status(error: CampaignRunsError) -> int:
    """The HTTP status that answers ``error`` (400 for a domain error with no closer match)."""
    return next((status for kind, status in STATUS_OF if isinstance(error, kind)), 400)


def error_fields(error: CampaignRunsError) -> dict[str, str]:
    """What an error answer adds to its detail: the wrong ``field`` (422), or someone's ``changes`` (409)."""
    if isinstance(error, DefinitionInvalidError):
        return {"field": error.field}
    if isinstance(error, DefinitionConflictError):
        return {"changes": error.changes, "current_sha": error.current_sha}
    return {}
