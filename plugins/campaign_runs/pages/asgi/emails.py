"""The email outbox of the plugin's own pages (non-FAB auth managers): the list, and Resend for administrators.

The same rules and template as the FAB outbox (``fab.emails``): emails of the campaigns the user may
read, filtered by status, campaign and run; a failed or undeliverable one is resent by a CSRF-protected POST
of a work-list administrator.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from campaign_runs.adapters import auth
from campaign_runs.pages.asgi.campaigns import Page
from campaign_runs.urls import UI

router = APIRouter()

STATUSES = ("pending", "sent", "failed", "undeliverable")
FILTERS = ("status", "dag_id", "run_id")
FILTER_MAX = 250


def emails_path(**params: str) -> str:
    """The outbox page with optional filters (status, dag_id, run_id)."""
    kept = {key: value for key, value in params.items() if value}
    path = f"{UI.BASE}/emails/"
    return f"{path}?{urlencode(kept)}" if kept else path


def _filters(values: dict[str, str]) -> dict[str, str]:
    return {name: str(values.get(name, "")).strip()[:FILTER_MAX] for name in FILTERS}


def _outbox(page: Page, filters: dict[str, str], status: int = 200) -> Response:
    from campaign_runs.core.emails import list_emails

    admin = auth.is_worklist_admin(page.user)
    readable = auth.authorized_dag_ids(page.user, "GET")
    found = list_emails(status=filters["status"] or None, dag_id=filters["dag_id"] or None, limit=500)
    shown = [e for e in found if e.dag_id in readable and (not filters["run_id"] or e.run_id == filters["run_id"])]
    return page.render(
        "emails.html",
        status=status,
        title="Emails",
        emails=shown,
        filters=filters,
        statuses=STATUSES,
        admin=admin,
        path=emails_path,
    )


@router.get("/emails")
@router.get("/emails/")
def emails(request: Request) -> Response:
    """Emails, newest first, filtered by ``status``, ``dag_id`` and ``run_id``."""
    page = Page(request)
    if (refused := page.gate()) is not None:
        return refused
    return _outbox(page, _filters(dict(request.query_params)))


def _resend(page: Page, outbox_id: int, fields: dict[str, str]) -> Response:
    from campaign_runs.core.emails import resend_email

    if not auth.is_worklist_admin(page.user):
        return page.refuse("Only administrators may resend emails.", 403)
    with auth.acting_as(page.user) as actor:
        email = resend_email(outbox_id, actor)
    message = f"Email {email.id} to {email.recipient} is pending again and on its way."
    return page.finish(RedirectResponse(emails_path(**_filters(fields)), 303), [("success", message)])


@router.post("/emails/{outbox_id}/resend")
async def resend(request: Request, outbox_id: int) -> Response:
    """Resend a failed or undeliverable email (administrators only); back to the filtered list."""
    page = await run_in_threadpool(Page, request)
    if (refused := page.gate()) is not None:
        return refused
    fields = await page.form()
    return await run_in_threadpool(_resend, page, outbox_id, fields)
