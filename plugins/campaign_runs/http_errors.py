"""Domain errors as HTTP status codes, and the headers every answer carries: the pages and the REST API alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, TypeVar

from campaign_runs.domain import (
    ActionNotAllowedError,
    CampaignActionNotAllowedError,
    CampaignPausedError,
    CampaignRunsError,
    ConflictError,
    DefinitionConflictError,
    DefinitionErrors,
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


def error_fields(error: CampaignRunsError) -> dict[str, Any]:
    """What an error answer adds to its detail: the wrong ``field`` (422), or someone's ``changes`` (409)."""
    if isinstance(error, DefinitionErrors):  # every error of the definition, each beside its field
        return {"field": error.field, "errors": [{"field": f, "message": m} for f, m in error.errors]}
    if isinstance(error, DefinitionInvalidError):
        return {"field": error.field}
    if isinstance(error, DefinitionConflictError):
        fields = {"changes": error.changes, "current_sha": error.current_sha}
        return {**fields, "merged": error.merged, "conflicts": list(error.conflicts)}
    return {}


NOSNIFF = ("X-Content-Type-Options", "nosniff")  # no browser reads an answer as another type than it says
PLAIN_TEXT = "text/plain; charset=utf-8"  # the type of a short error answer that is no page


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Any: ...


R = TypeVar("R", bound=_HasHeaders)


def nosniff(response: R) -> R:
    """``response`` with ``X-Content-Type-Options: nosniff`` (a Flask ``after_request`` function)."""
    response.headers[NOSNIFF[0]] = NOSNIFF[1]
    return response


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class NosniffMiddleware:
    """ASGI middleware: every HTTP answer of the wrapped app carries ``X-Content-Type-Options: nosniff``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, value = NOSNIFF[0].lower().encode(), NOSNIFF[1].encode()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
                message = {**message, "headers": [*headers, (name, value)]}
            await send(message)

        await self.app(scope, receive, send_with_header)
