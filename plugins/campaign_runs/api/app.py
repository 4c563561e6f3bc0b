"""The Campaign Runs JSON API: a FastAPI app mounted on Airflow's API server under ``/campaign-runs``.

Thin routes: parse input, check Airflow's permissions, call one core function, shape the answer.
Authentication is Airflow's own: the bearer JWT that ``/api/v2`` accepts (``POST /auth/token``) or the
UI's session cookie. Reading needs read access to the campaign's DAG (runs: to its runs); acting needs
edit access to its runs. Errors are ``{"detail": "...", "code": "..."}``. Only the recipients' one-click
unsubscribe pages (``api.unsubscribe``) need no login: their signed token is the credential.
"""

from __future__ import annotations

from fastapi import FastAPI

from campaign_runs import __version__
from campaign_runs.api import errors
from campaign_runs.api.definitions import router as definitions_router
from campaign_runs.api.emails import router as emails_router
from campaign_runs.api.monitor import router as monitor_router
from campaign_runs.api.runs import router as runs_router
from campaign_runs.api.suppressions import router as suppressions_router
from campaign_runs.api.users import router as users_router
from campaign_runs.http_errors import NosniffMiddleware
from campaign_runs.pages.asgi.app import ui_app

URL_PREFIX = "/campaign-runs"

app = FastAPI(
    title="Campaign Runs API",
    version=__version__,
    description=(
        "Marketing campaigns on Apache Airflow: campaigns, run schedules, Stop / Restart / Skip with "
        "notes, and work lists. Authenticate with the JWT from Airflow's `POST /auth/token` "
        '(`Authorization: Bearer <token>`). Errors are `{"detail": ..., "code": ...}`. Actions accept '
        "an `Idempotency-Key` header: repeating the same request (same action, run, note and options) with "
        "the same key returns the first result; the same key with another request is refused with 422 "
        "(`idempotency_key_reused`). A key is bound to its request for `[campaign_runs] "
        "idempotency_key_ttl_hours` (24 by default); after that it starts a new action."
    ),
)

app.add_middleware(NosniffMiddleware)
routers = (emails_router, users_router, monitor_router, definitions_router, suppressions_router, runs_router)
for router in routers:
    app.include_router(router)
app.mount("/ui", ui_app)  # the campaign pages under auth managers other than FAB's (pages/asgi)
errors.install(app)
