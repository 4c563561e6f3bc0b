"""The Monitor page of the plugin's own pages (non-FAB auth managers): ``/campaign-runs/ui/monitor/<dag_id>``.

What it shows is ``pages.monitor``'s, as on FAB's host (``fab.monitor``): the same template, query parameters,
CSV and permission rule (who may read the campaign's runs); this module translates Starlette's request and response.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response

from campaign_runs.domain import CampaignRunsError
from campaign_runs.pages import monitor as monitor_page
from campaign_runs.pages.asgi.campaigns import Page
from campaign_runs.urls import UI

router = APIRouter()


# Before ``/monitor/{dag_id}/table.csv``: ``static/table.csv`` is a file name here (a campaign "static" has no CSV).
@router.get("/monitor/static/{name}")
def static_file(name: str) -> Response:
    """Chart.js and its licence, from the package (no CDN); no login, as on FAB's host."""
    found = monitor_page.static_file(name)
    if found is None:
        return PlainTextResponse("Not found.", 404)
    return FileResponse(found, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/monitor/{dag_id}")
def monitor(request: Request, dag_id: str) -> Response:
    """The Monitor page: limit 10, 30 or 100 runs, or ``from`` / ``to`` dates (run_after, UTC)."""
    page = Page(request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    try:
        return page.show(monitor_page.monitor_page(dag_id, request.query_params, UI))
    except CampaignRunsError as error:
        return page.refuse(str(error), monitor_page.refusal_status(error))


@router.get("/monitor/{dag_id}/table.csv")
def table_csv(request: Request, dag_id: str) -> Response:
    """The Monitor table as CSV (same parameters as the page)."""
    page = Page(request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    try:
        body, headers = monitor_page.monitor_csv(dag_id, request.query_params)
    except CampaignRunsError as error:  # the page's error page: the refused value is in it, escaped
        return page.refuse(str(error), monitor_page.refusal_status(error))
    return Response(body.encode(), 200, headers=headers)
