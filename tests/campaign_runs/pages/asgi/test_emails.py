"""The email outbox page under SimpleAuthManager: served by the plugin's FastAPI app, Resend for administrators.

A real login (``POST /auth/token`` of SimpleAuthManager) and Airflow's JWT cookie, on the API-server app; the
resent email is received by a real SMTP server.
"""

# ruff: noqa: F811  (pytest fixtures imported from test_auth_managers_pages)
from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from tests.campaign_runs.pages.asgi.test_campaigns import CSRF, UI, app, login, run_url, text  # noqa: F401
from tests.support.fixtures import outbox_rows

EMAILS = f"{UI}/emails/"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def undeliverable_email(make_run: Any) -> tuple[str, int]:
    """A run skipped by alice, who has no address under SimpleAuthManager: its email is undeliverable."""
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note="Skip it")
    core.housekeeping_pass()
    [row] = outbox_rows()
    assert (row["status"], row["recipient"]) == ("undeliverable", None)
    return run_id, int(row["id"])


def test_the_run_pages_resend_link_opens_the_outbox_and_an_admin_resends(
    app: Any, make_run: Any, smtp_server: Any
) -> None:
    from campaign_runs import core
    from campaign_runs.core.users import set_email

    run_id, outbox_id = undeliverable_email(make_run)
    admin = login(app, "admin")
    link = re.search(r'\(<a href="([^"]+)">resend</a>\)', admin.get(run_url(run_id)).text)
    assert link is not None
    outbox = admin.get(unescape(link.group(1)))
    assert outbox.status_code == 200, outbox.text[:300]
    assert f'data-email-id="{outbox_id}"' in outbox.text and "Resend</button>" in outbox.text
    assert "User 'alice' has no email address." in text(outbox)
    resend = f"{UI}/emails/{outbox_id}/resend"
    assert f'action="{resend}"' in outbox.text

    no_address = admin.post(resend, data={"csrf_token": CSRF.findall(outbox.text)[0]})
    assert no_address.status_code == 409 and "User 'alice' has no email address; add one" in text(no_address)
    assert admin.post(resend, data={"run_id": run_id}).status_code == 400  # no CSRF token
    assert outbox_rows()[0]["status"] == "undeliverable"

    set_email("alice", "alice@own.example")
    done = admin.post(resend, data={"csrf_token": CSRF.findall(outbox.text)[0], "run_id": run_id})
    assert (done.status_code, done.headers["location"]) == (303, f"{EMAILS}?run_id={quote(run_id, safe='')}")
    assert core.wait_for_deliveries(30)
    [message] = smtp_server.wait_for(1)
    assert message["X-Envelope-To"] == "alice@own.example"
    assert [(r["status"], r["recipient"]) for r in outbox_rows()] == [("sent", "alice@own.example")]
    shown = admin.get(done.headers["location"])
    assert f"Email {outbox_id} to alice@own.example is pending again and on its way." in text(shown)
    assert [h.actor for h in core.run_history("cr_campaign", run_id)] == ["alice", "admin"]


def test_users_who_are_not_administrators_see_the_outbox_but_cannot_resend(app: Any, make_run: Any) -> None:
    _, outbox_id = undeliverable_email(make_run)
    alice = login(app, "alice")
    page = alice.get(EMAILS, params={"status": "undeliverable", "dag_id": "cr_campaign"})
    assert page.status_code == 200 and f'data-email-id="{outbox_id}"' in page.text
    assert "Resend</button>" not in page.text
    assert 'id="cr-email-total">0 emails' in alice.get(EMAILS, params={"status": "sent"}).text
    token = META_CSRF.search(page.text)
    assert token is not None
    refused = alice.post(f"{UI}/emails/{outbox_id}/resend", data={"csrf_token": token.group(1)})
    assert refused.status_code == 403 and "Only administrators may resend emails." in text(refused)
    assert outbox_rows()[0]["status"] == "undeliverable"

    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get(EMAILS).status_code == 302
    assert anonymous.post(f"{UI}/emails/{outbox_id}/resend").status_code == 401
    assert alice.get(f"{UI}/emails/{outbox_id}/resend").status_code == 405
    assert alice.get(EMAILS, params={"run_id": "x" * 2000}).status_code == 400  # past the pages' field limit
