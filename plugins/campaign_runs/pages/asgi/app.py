"""The plugin's own pages as one FastAPI app, mounted by the JSON API at ``/campaign-runs/ui``."""

from __future__ import annotations

from campaign_runs.http_errors import NosniffMiddleware
from campaign_runs.pages.asgi.campaigns import ui_app
from campaign_runs.pages.asgi.definitions import router as definitions_router
from campaign_runs.pages.asgi.emails import router as emails_router
from campaign_runs.pages.asgi.monitor import router as monitor_router
from campaign_runs.pages.asgi.suppressions import router as suppressions_router
from campaign_runs.pages.asgi.worklist import router

ui_app.include_router(router)
ui_app.include_router(emails_router)
ui_app.include_router(monitor_router)
ui_app.include_router(definitions_router)
ui_app.include_router(suppressions_router)
ui_app.add_middleware(NosniffMiddleware)

__all__ = ["ui_app"]
