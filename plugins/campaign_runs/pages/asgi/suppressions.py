"""The suppression list page on the plugin's own pages (non-FAB auth managers), under ``/suppressions/``.

What it shows and does is ``pages.suppressions``', as on FAB's host (``fab.suppressions``): the same template,
fields, permission rule and statuses. This module translates Starlette's request and response; every POST carries
the signed CSRF token (``Page.form``); a refusal the page code raises is answered by the app's exception handler
(``asgi.campaigns.answer_refusal``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from campaign_runs.adapters import auth
from campaign_runs.pages import forms, suppressions
from campaign_runs.pages.asgi.campaigns import Page
from campaign_runs.pages.builders import PageView
from campaign_runs.urls import UI

router = APIRouter(prefix="/suppressions")
Answer = Callable[[Page, dict[str, str], suppressions.Upload | None], Any]  # the page code's answer to a form
FORMS = ("add", "remove", "import")


def _opened(request: Request) -> tuple[Page, Response | None]:
    """The page's user, or the answer when the query is bad or nobody is logged in."""
    page = Page(request)
    try:
        forms.check_query_string(request.url.query.encode())
    except forms.BadInputError as error:
        return page, page.refuse(str(error), 400)
    return page, page.gate(check=suppressions.check_fields)  # the page's own limits: a page cursor holds an address


@router.get("/")
def listed(request: Request) -> Response:
    """A page of entries (``channel`` filter, ``after`` cursor) with the forms that change the list."""
    page, refused = _opened(request)
    if refused is not None:
        return refused
    with auth.acting_as(page.user):  # the core knows the user as the auth manager does
        return page.show(suppressions.list_page(page, request.query_params))


@router.get("/export.csv")
def export_csv(request: Request) -> Response:
    """The whole list as a CSV download."""
    page, refused = _opened(request)
    if refused is not None:
        return refused
    with auth.acting_as(page.user):
        lines = suppressions.export_csv(page)
    if isinstance(lines, PageView):
        return page.show(lines)
    return page.finish(StreamingResponse(lines, media_type="text/csv", headers=suppressions.EXPORT_HEADERS))


@router.get("/{form}")
def form_opened(request: Request, form: str) -> Response:
    """A form's address opened (FAB's form posted under another auth manager, redirected here): the list."""
    page, refused = _opened(request)
    if refused is not None:
        return refused
    if form not in FORMS:
        return page.refuse(f"Unknown suppression list page {form[:40]!r}.", 404)
    return page.finish(RedirectResponse(UI.suppressions_path(), 303))


async def _submit(request: Request, answer: Answer) -> Response:
    """A POST: the login, then the form (its fields and CSRF token checked), then the page code, as the user."""
    page = await run_in_threadpool(Page, request)
    if (refused := page.gate(check=suppressions.check_fields)) is not None:
        return refused
    fields = await page.form(suppressions.check_fields)
    upload = await _upload(request)
    return await run_in_threadpool(_as_user, page, answer, fields, upload)


async def _upload(request: Request) -> suppressions.Upload | None:
    """The posted file, read up to one byte over the limit (the form is parsed once, by ``Page.form``)."""
    found = (await request.form()).get("file")
    if not isinstance(found, UploadFile):
        return None
    return suppressions.Upload(found.filename or "", await found.read(suppressions.MAX_IMPORT_BYTES + 1))


def _as_user(page: Page, answer: Answer, fields: dict[str, str], upload: suppressions.Upload | None) -> Response:
    with auth.acting_as(page.user):
        return page.show(answer(page, fields, upload))


@router.post("/add")
async def add(request: Request) -> Response:
    """Suppress the posted address on the posted channel."""
    return await _submit(request, lambda page, fields, _: suppressions.add(page, UI, fields))


@router.post("/remove")
async def remove(request: Request) -> Response:
    """Take the posted address off the posted channel's list."""
    return await _submit(request, lambda page, fields, _: suppressions.remove(page, UI, fields))


@router.post("/import")
async def import_csv(request: Request) -> Response:
    """Add every row of the uploaded CSV file, or none."""
    return await _submit(request, lambda page, fields, upload: suppressions.import_csv(page, UI, fields, upload))
