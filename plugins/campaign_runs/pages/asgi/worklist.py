"""The work list of the plugin's own pages (non-FAB auth managers): entries, reassign, and My email."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import forms, rights
from campaign_runs.pages.asgi.campaigns import Page
from campaign_runs.urls import UI

router = APIRouter()


def _worklist(page: Page, status: int = 200) -> Response:
    from campaign_runs import core
    from campaign_runs.core.users import email_of, no_email_notice

    admin = page.is_admin()
    everyone = admin and not forms.flag(page.request.query_params, "mine")
    readable = page.authorized_dag_ids("GET")
    offered = rights.row_rights(page, readable)  # asked before any core call, once a method
    items = [i for i in core.worklist(None if everyone else page.username) if i.dag_id in readable]
    found = email_of(page.username)
    return page.render(
        "worklist.html",
        status=status,
        title="My work list",
        items=items,
        admin=admin,
        may_manage_suppressions=admin,
        everyone=everyone,
        may_act=offered["may_act"],
        may_restart=offered["may_restart"],
        idempotency_key=uuid.uuid4().hex,
        my_email=found,
        my_email_notice=no_email_notice(found),
    )


@router.get("/worklist")
def worklist(request: Request) -> Response:
    """Runs assigned to the logged-in user (admins: everyone's), and where their emails go."""
    page = Page(request)
    if (refused := page.gate()) is not None:
        return refused
    return _worklist(page)


async def _posted(request: Request) -> tuple[Page, dict[str, str] | None, Response | None]:
    page = await run_in_threadpool(Page, request)
    if (refused := page.gate()) is not None:
        return page, None, refused
    return page, await page.form(), None


def _reassign(page: Page, fields: dict[str, str]) -> Response:
    from campaign_runs import core

    if not page.is_admin():
        return page.refuse("Only administrators may reassign work-list entries.", 403)
    with auth.acting_as(page.user) as actor:
        item = core.reassign(
            fields.get("dag_id", ""),
            fields.get("run_id", ""),
            to_user=fields.get("to_user", "").strip(),
            actor=actor,
            note=fields.get("note", ""),
        )
    message = f"Run {item.run_id} is now on the work list of {item.assignee}."
    return page.finish(RedirectResponse(UI.worklist_path(), 303), [("success", message)])


@router.post("/worklist/reassign")
async def reassign(request: Request) -> Response:
    """Give a run's work-list entry to another user (admins only)."""
    page, fields, refused = await _posted(request)
    if refused is not None or fields is None:
        return refused or Response(status_code=400)
    return await run_in_threadpool(_reassign, page, fields)


def _set_email(page: Page, fields: dict[str, str]) -> Response:
    from campaign_runs.core.users import no_email_notice, set_email

    try:
        with auth.acting_as(page.user) as username:
            found = set_email(username, fields.get("email", ""))
    except CampaignRunsError as error:
        page.flashes = [*page.flashes, ("danger", str(error))]
        return _worklist(page, status=http_status(error))
    message = f"Your emails go to {found.address}." if found.address else (no_email_notice(found) or "")
    return page.finish(RedirectResponse(UI.worklist_path(), 303), [("success", message)])


@router.post("/worklist/email")
async def my_email(request: Request) -> Response:
    """Set (or clear) the address the user gets emails at when the auth manager gives none."""
    page, fields, refused = await _posted(request)
    if refused is not None or fields is None:
        return refused or Response(status_code=400)
    return await run_in_threadpool(_set_email, page, fields)
