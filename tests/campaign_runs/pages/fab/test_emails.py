"""The outbox on the pages: the run page lists its emails, the campaigns page counts failed ones, admins resend."""

# ruff: noqa: F811  (pytest fixtures imported from test_views)
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from tests.campaign_runs.pages.fab.test_campaigns import BASE, csrf_token, run_url, users  # noqa: F401
from tests.support.fixtures import outbox_rows


def test_failed_emails_on_the_pages_and_resend(users: Any, make_run: Any, smtp_server: Any) -> None:
    from airflow.utils.session import create_session
    from campaign_runs import core
    from campaign_runs.tables import email_outbox

    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note="Skip it")
    assert core.wait_for_deliveries(30)
    smtp_server.wait_for(1)
    with create_session() as session:  # as the delivery leaves it after its last failed attempt
        session.execute(update(email_outbox).values(status="failed", attempts=10, last_error="451 try later"))
    [row] = outbox_rows()

    admin = users("admin")
    page = admin.get(run_url("cr_campaign", run_id)).text
    emails = page[page.index('id="cr-emails"') :]
    assert "alice@example.com" in emails and "451 try later" in emails
    assert re.search(r'class="cr-email-status">failed', emails) and 'class="cr-email-attempts">10<' in emails
    from tests.support.fixtures import sync_test_dags

    sync_test_dags()  # the test campaigns as parsed, whatever DAG syncs other tests of this process made
    cell = None
    for page_number in range(1, 21):  # other tests of this process may add many campaigns before this one
        found = admin.get(f"{BASE}/list", params={"q": "cr_campaign", "page": page_number})
        assert found.status_code == 200, found.text[:300]
        campaign_row = re.search(r"<tr[^>]*data-dag-id=\"cr_campaign\".*?</tr>", found.text, re.S)
        if campaign_row is not None:
            cell = re.search(r'class="cr-failed-emails">(.*?)</td>', campaign_row.group(0), re.S)
            break
    assert cell is not None, "cr_campaign is on no page of the campaigns list"
    assert ">1</a>" in cell.group(1)

    outbox = admin.get(f"{BASE}/emails/?status=failed")
    assert outbox.status_code == 200, outbox.text[:300]
    assert f'data-email-id="{row["id"]}"' in outbox.text and "Resend" in outbox.text
    resend = f"{BASE}/emails/{row['id']}/resend"
    assert admin.post(resend, data={"status": "failed"}).status_code == 400  # no CSRF token
    assert outbox_rows()[0]["status"] == "failed"

    alice = users("alice")
    alice_page = alice.get(f"{BASE}/emails/?status=failed")
    assert "Resend</button>" not in alice_page.text
    refused = alice.post(resend, data={"csrf_token": csrf_token(alice_page.text)})
    assert refused.status_code == 403 and outbox_rows()[0]["status"] == "failed"

    done = admin.post(resend, data={"csrf_token": csrf_token(outbox.text), "status": "failed"})
    assert done.status_code == 303 and done.headers["location"].endswith("/emails/?status=failed")
    assert core.wait_for_deliveries(30)
    assert [m["Message-ID"] for m in smtp_server.wait_for(2)] == [row["message_id"]] * 2
    assert [(r["status"], r["attempts"]) for r in outbox_rows()] == [("sent", 1)]
    assert 'cr-failed-emails">0<' in admin.get(f"{BASE}/list").text
