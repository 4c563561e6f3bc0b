"""The JSON API's errors: ``{"detail": ..., "code": ...}`` for domain errors, invalid requests and HTTP errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from campaign_runs.api.schemas import ErrorCode, ErrorResponse
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import error_fields, http_status

_ERROR_TEXT = {
    status.HTTP_401_UNAUTHORIZED: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    status.HTTP_403_FORBIDDEN: "Authenticated, but not allowed to do this.",
    status.HTTP_404_NOT_FOUND: "Unknown campaign, run, user or work-list entry.",
    status.HTTP_409_CONFLICT: "The run's status does not allow this, another action won, or the campaign is paused.",
    status.HTTP_422_UNPROCESSABLE_CONTENT: (
        "Invalid parameters or body, a refused note, or an Idempotency-Key already used for another request."
    ),
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of the error ``codes``, each with its problem model and meaning."""
    return {code: {"model": ErrorResponse, "description": _ERROR_TEXT[code]} for code in codes}


READ_ERRORS = responses(401, 403, 404, 422)
ACTION_ERRORS = responses(401, 403, 404, 409, 422)


def _problem(status_code: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


async def _domain_error(request: Request, error: CampaignRunsError) -> JSONResponse:
    return JSONResponse({"detail": str(error), "code": error.code, **error_fields(error)}, http_status(error))


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return _problem(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(parts) or "Invalid request.", "invalid_request")


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


def install(app: FastAPI) -> None:
    """Answer ``app``'s errors as problems: domain errors by their status, validation and HTTP errors alike."""
    app.add_exception_handler(CampaignRunsError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
