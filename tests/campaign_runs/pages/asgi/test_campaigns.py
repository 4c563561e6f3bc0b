"""The campaign pages under SimpleAuthManager (``airflow standalone``'s): served by the plugin's FastAPI app.

A real login (``POST /auth/token`` of SimpleAuthManager) and Airflow's JWT cookie, on the API-server app.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.campaign_runs.pages.asgi.hosts import token_login as login
from tests.support import auth_managers
from tests.support.fixtures import outbox_rows

UI = "/campaign-runs/ui"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app

    with auth_managers.active("simple", tmp_path_factory.mktemp("simple")):
        yield create_app()


def text(response: Any) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def run_url(run_id: str) -> str:
    return f"{UI}/display/cr_campaign/run/{quote(run_id, safe='')}"


def test_the_airflow_ui_entries_point_at_the_plugins_own_pages(app: Any) -> None:
    from campaign_runs.plugin import CampaignRunsPlugin

    hrefs = {view["destination"]: view["href"] for view in CampaignRunsPlugin.external_views}
    assert hrefs == {
        "nav": f"{UI}/list",
        "dag": f"{UI}/display/{{DAG_ID}}",
        "dag_run": f"{UI}/display/{{DAG_ID}}/run/{{RUN_ID}}",
    }


def test_anonymous_users_go_to_airflows_login_and_fab_paths_lead_to_the_pages(app: Any) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    page = anonymous.get(f"{UI}/list")
    assert page.status_code == 302 and page.headers["location"].startswith("/auth/login?next=")
    assert anonymous.get(f"{UI}/display/cr_campaign/status.json").status_code == 401
    forged = TestClient(app, follow_redirects=False, cookies={"_token": "not-a-jwt"})
    assert forged.get(f"{UI}/list").status_code == 302
    old = login(app, "alice").get("/pluginsv2/campaigns/display/cr_campaign")
    assert (old.status_code, old.headers["location"]) == (302, f"{UI}/display/cr_campaign")
    outbox = login(app, "alice").get("/pluginsv2/campaigns/emails/", params={"status": "failed"})
    assert (outbox.status_code, outbox.headers["location"]) == (302, f"{UI}/emails/?status=failed")


def test_a_logged_in_user_reads_the_pages_and_stops_a_run_with_a_note(app: Any, make_run: Any) -> None:
    from campaign_runs import core

    alice = login(app, "alice")
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    listing = alice.get(f"{UI}/list")
    assert listing.status_code == 200, listing.text
    assert "cr_campaign" in listing.text and "Signed in as alice" in text(listing)
    display = alice.get(f"{UI}/display/cr_campaign")
    assert display.status_code == 200 and run_id in display.text
    assert alice.get(f"{UI}/display/cr_campaign/status.json").json()["runs"][0]["run_id"] == run_id
    details = alice.get(run_url(run_id))
    assert details.status_code == 200 and 'action="' + run_url(run_id) + '/stop"' in details.text

    unsigned = alice.post(f"{run_url(run_id)}/stop", data={"note": "No token", "csrf_token": "forged"})
    assert unsigned.status_code == 400 and "CSRF" in text(unsigned)
    assert run_status(run_id) == "running"

    token = CSRF.search(details.text)
    assert token is not None
    stopped = alice.post(f"{run_url(run_id)}/stop", data={"note": "Wrong list", "csrf_token": token.group(1)})
    assert (stopped.status_code, stopped.headers["location"]) == (303, run_url(run_id))
    shown = text(alice.get(stopped.headers["location"]))
    assert f"Run {run_id} is stopping" in shown
    assert "No email could be sent: User 'alice' has no email address." in shown
    assert run_status(run_id) in ("stopping", "stopped")  # no task of it runs: stopped once read
    assert [h.actor for h in core.run_history("cr_campaign", run_id)] == ["alice"]

    core.housekeeping_pass()
    assert outbox_rows()[-1]["status"] == "undeliverable"
    worklist = alice.get(f"{UI}/worklist")
    assert worklist.status_code == 200 and f'data-run-id="{run_id}"' in worklist.text
    assert "User 'alice' has no email address." in text(worklist)

    token = CSRF.search(worklist.text)
    assert token is not None
    saved = alice.post(f"{UI}/worklist/email", data={"email": "alice@own.example", "csrf_token": token.group(1)})
    assert saved.status_code == 303
    assert "Your emails go to alice@own.example (campaign runs)." in text(alice.get(f"{UI}/worklist"))
    refused = alice.post(f"{UI}/worklist/email", data={"email": "nope", "csrf_token": token.group(1)})
    assert refused.status_code == 422 and "is not an email address" in text(refused)


def test_viewers_may_not_act_and_bad_input_is_refused(app: Any, make_run: Any) -> None:
    viewer = login(app, "viewer")
    run_id = make_run("cr_campaign", state="running")
    details = viewer.get(run_url(run_id))
    assert details.status_code == 200 and "/stop" not in details.text
    token = CSRF.search(viewer.get(f"{UI}/worklist").text)
    assert token is not None
    refused = viewer.post(f"{run_url(run_id)}/stop", data={"note": "n", "csrf_token": token.group(1)})
    assert refused.status_code == 403 and "You may not stop runs of campaign cr_campaign." in text(refused)
    assert viewer.get(f"{UI}/display/cr_campaign", params={"page": "0"}).status_code == 400
    assert viewer.get(f"{UI}/display/no_such_dag").status_code == 404
    assert viewer.get(f"{UI}/display/cr_plain").status_code == 200  # how to make it a campaign
    assert run_status(run_id) == "running"


def run_status(run_id: str) -> str:
    from campaign_runs import core

    return core.get_run("cr_campaign", run_id).status
