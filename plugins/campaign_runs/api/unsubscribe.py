"""Recipients' one-click unsubscribe (RFC 8058), ``/campaign-runs/unsubscribe/<token>``: no login needed.

The signed token is the credential (no login, no CSRF token: a mail provider posts it as it is). ``GET`` only shows
a confirmation with a button, since link scanners follow links; ``POST`` with ``List-Unsubscribe=One-Click``
(form-encoded or multipart) suppresses the address as ``unsubscribed``. A token we did not sign is a 400 page and
changes nothing. The answer is the same whether or not the address was already on the list.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.types import Message

router = APIRouter(include_in_schema=False)  # pages for people, not part of the JSON API

MAX_BODY = 4096  # bytes: the one-click body is 26
ONE_CLICK = ("List-Unsubscribe", "One-Click")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: no other site learns it
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Robots-Tag": "noindex",
}
TITLES = {"confirm": "Unsubscribe", "done": "You are unsubscribed", "invalid": "This link does not work"}


@cache
def _env() -> Environment:
    templates = Path(__file__).parents[1] / "templates"
    return Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(default=True))


def _page(state: str, status: int, **context: Any) -> HTMLResponse:
    html = _env().get_template("campaign_runs/unsubscribe.html").render(state=state, title=TITLES[state], **context)
    return HTMLResponse(html, status, headers=HEADERS)


async def _one_click(request: Request) -> bool:
    """Whether the body (read up to ``MAX_BODY`` bytes) is ``List-Unsubscribe=One-Click``, form-encoded or multipart."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return False

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=8, max_part_size=MAX_BODY)
    except Exception:  # malformed multipart or encoding: not a one-click request
        return False
    return form.get(ONE_CLICK[0]) == ONE_CLICK[1]


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def confirm_unsubscribe(token: str) -> HTMLResponse:
    """The confirmation page: what the link unsubscribes, and a button that posts; nothing changes."""
    from campaign_runs.core.suppressions import InvalidTokenError, read_unsubscribe

    try:
        found = read_unsubscribe(token)
    except InvalidTokenError as error:
        return _page("invalid", 400, message=str(error))
    return _page("confirm", 200, address=found.address)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """Suppress the token's address as ``unsubscribed`` (its campaign as source, ``recipient`` as actor)."""
    from campaign_runs.core.suppressions import InvalidTokenError, read_unsubscribe
    from campaign_runs.core.suppressions import unsubscribe as suppress

    try:
        found = read_unsubscribe(token)
    except InvalidTokenError as error:
        return _page("invalid", 400, message=str(error))
    if not await _one_click(request):
        message = "This request does not ask to unsubscribe: its body must be List-Unsubscribe=One-Click."
        return _page("invalid", 400, message=message)
    try:
        await run_in_threadpool(suppress, token)
    except InvalidTokenError as error:
        return _page("invalid", 400, message=str(error))
    return _page("done", 200, address=found.address)
