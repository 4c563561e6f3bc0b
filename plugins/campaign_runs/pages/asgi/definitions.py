"""New campaign, Configure and the campaign actions on the plugin's own pages (non-FAB auth managers).

What they show and do is ``pages.definitions``', ``pages.trials``' and ``pages.actions``', as on FAB's host
(``fab.definitions``): the same templates, fields, permission rule and statuses. This module translates Starlette's
request and response; every POST carries the signed CSRF token (``Page.form``); a refusal the page code raises is
answered by the app's exception handler (``asgi.campaigns.answer_refusal``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from campaign_runs.adapters import auth
from campaign_runs.pages import actions, definitions, trials
from campaign_runs.pages.asgi.campaigns import Page
from campaign_runs.urls import FORM_SCRIPT, UI

router = APIRouter()
Answer = Callable[[Page, dict[str, str]], Any]  # the page code's answer to a posted form


async def _submit(request: Request, answer: Answer, dag_id: str | None = None) -> Response:
    """A POST: the login, then the form (its fields and CSRF token checked), then the page code, as the user."""
    page = await run_in_threadpool(Page, request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    fields = await page.form(definitions.check_fields)
    return await run_in_threadpool(_as_user, page, answer, fields)


def _as_user(page: Page, answer: Answer, fields: dict[str, str]) -> Response:
    with auth.acting_as(page.user):  # the core knows the user (their email) as the auth manager does
        return page.show(answer(page, fields))


def _opened(request: Request, answer: Callable[[Page], Any], dag_id: str | None = None) -> Response:
    """A GET: the login, then the page code."""
    page = Page(request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    return page.show(answer(page))


# ---------------------------------------------------------------- New


@router.get("/new")
def new_form(request: Request) -> Response:
    """The New campaign form."""
    return _opened(request, lambda page: definitions.new_page(page, UI, None))


@router.post("/new")
async def new_save(request: Request) -> Response:
    """Save a new campaign: validates everything and writes nothing on any error."""
    return await _submit(request, lambda page, fields: definitions.new_page(page, UI, fields))


@router.post("/new/audience")
async def new_audience(request: Request) -> Response:
    """The New form again, with its audience read now as a run would read it; nothing is saved or sent."""
    return await _submit(request, lambda page, fields: definitions.new_audience(page, UI, fields))


@router.get("/new/preview.json")
def preview(request: Request) -> Response:
    """The schedule in plain words and its next 10 fire times, in the campaign's timezone and in UTC."""
    page = Page(request)
    if (refused := page.gate(json=True)) is not None:
        return refused
    found, status = definitions.schedule_preview(request.query_params)
    return JSONResponse(found, status, headers={"Cache-Control": "no-store"})


@router.get("/new/static/{name}")
def static_file(name: str) -> Response:
    """The form's script, from the package (no CDN); no login, as on FAB's host."""
    if name != FORM_SCRIPT:
        return PlainTextResponse("Not found.", 404)
    return FileResponse(definitions.STATIC_DIR / name, headers={"Cache-Control": "public, max-age=3600"})


# ---------------------------------------------------------------- Configure


@router.get("/display/{dag_id}/configure")
def configure_form(request: Request, dag_id: str) -> Response:
    """The Configure form, prefilled from the campaign's YAML (read-only, with the reason, when it cannot be saved)."""
    return _opened(request, lambda page: definitions.configure_page(page, UI, dag_id, None), dag_id)


@router.post("/display/{dag_id}/configure")
async def configure_save(request: Request, dag_id: str) -> Response:
    """Save the campaign's new version over the one opened (409 and the merge page when someone saved since)."""
    return await _submit(request, lambda page, fields: definitions.configure_page(page, UI, dag_id, fields), dag_id)


@router.post("/display/{dag_id}/configure/audience")
async def configure_audience(request: Request, dag_id: str) -> Response:
    """The Configure form again, with its audience read now as a run would read it; nothing is saved or sent."""
    answer = lambda page, fields: definitions.configure_audience(page, UI, dag_id, fields)  # noqa: E731
    return await _submit(request, answer, dag_id)


@router.post("/display/{dag_id}/configure/check")
async def configure_check(request: Request, dag_id: str) -> Response:
    """Check connections of the form's definition (saved or not); nothing is saved or sent."""
    return await _submit(request, lambda page, fields: trials.trial_page(page, UI, dag_id, fields, "check"), dag_id)


@router.post("/display/{dag_id}/configure/test-send")
async def configure_test_send(request: Request, dag_id: str) -> Response:
    """Send test messages of the form's definition (saved or not) to the addresses given; nothing is saved."""
    return await _submit(request, lambda page, fields: trials.trial_page(page, UI, dag_id, fields, "send"), dag_id)


# ---------------------------------------------------------------- campaign actions


@router.get("/display/{dag_id}/actions/{action}")
def campaign_action_opened(request: Request, dag_id: str, action: str) -> Response:
    """An action's address opened (FAB's form posted under another auth manager, redirected here): the display."""
    page = Page(request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    return page.finish(RedirectResponse(UI.campaign_path(dag_id), 303))


@router.post("/display/{dag_id}/actions/{action}")
async def campaign_action(request: Request, dag_id: str, action: str) -> Response:
    """Run now (with params overrides), Pause, Resume (missed: all, latest, none) or Stop all, with a note."""
    answer = lambda page, fields: actions.campaign_action(page, UI, dag_id, action, fields)  # noqa: E731
    return await _submit(request, answer, dag_id)
