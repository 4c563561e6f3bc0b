"""Under SimpleAuthManager (``airflow standalone``'s), the campaign pages in headless Chromium on real processes.

A real api-server, dag-processor and scheduler run with SimpleAuthManager and its users; Alice logs in through
Airflow's own login page, opens Campaigns from Airflow's navigation (the plugin's own pages, served by its
FastAPI app), sets My email, stops a running ``cr_slow`` run with a note, and a real SMTP server receives the
stop email at the address she set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.support import api_client, chromium, login, running_stack, trigger
from tests.support import auth_managers
from tests.support.fixtures import PASSWORD, TEST_DAGS, SmtpSink
from tests.support.processes import AirflowStack, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
OWN_ADDRESS = "alice@own.example"
NOTE = "Wrong segment, stopped under SimpleAuthManager"


@pytest.fixture
def stack(tmp_path: Path, smtp_server: SmtpSink, airflow_db: None) -> Iterator[AirflowStack]:
    """api-server + dag-processor + scheduler under SimpleAuthManager, its passwords file in ``tmp_path``."""
    with running_stack(smtp_server.port, tmp_path, TEST_DAGS, auth_managers.environment("simple", tmp_path)) as stack:
        yield stack


@pytest.fixture
def admin_api(stack: AirflowStack) -> Iterator[httpx.Client]:
    """Airflow's REST API as SimpleAuthManager's admin (a JWT from ``/auth/token``)."""
    client = api_client(stack.url(), "admin", PASSWORD)
    try:
        yield client
    finally:
        client.close()


def task_state(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> str | None:
    response = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    return response.json().get("state") if response.status_code == 200 else None


def test_alice_logs_in_and_stops_a_run_with_a_note(
    stack: AirflowStack, admin_api: httpx.Client, smtp_server: SmtpSink
) -> None:
    from playwright.sync_api import expect

    assert admin_api.patch("/api/v2/dags/cr_slow", json={"is_paused": False}).status_code == 200
    run_id = trigger(admin_api, "cr_slow", f"manual__simple_{time.time_ns()}")
    try:
        wait_until(lambda: task_state(admin_api, "cr_slow", run_id, "send_email") == "running", timeout=180)
    except AssertionError:
        raise AssertionError(stack.logs()) from None

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(30_000)
        login(page, stack.url(), USER, PASSWORD)

        # Airflow's navigation opens the plugin's own pages (not FAB's /pluginsv2) inside Airflow's UI.
        page.get_by_role("link", name="Campaigns").first.click()
        page.wait_for_url("**/plugin/campaigns")
        assert page.locator("iframe").get_attribute("src", timeout=30_000).endswith("/campaign-runs/ui/list")
        frame = page.frame_locator("iframe")
        expect(frame.locator("header.cr-top .user")).to_have_text(f"Signed in as {USER}")

        # My email: SimpleAuthManager's users carry no address.
        frame.get_by_role("link", name="My work list").click()
        frame.locator("#cr-my-email input[name=email]").fill(OWN_ADDRESS)
        frame.locator("#cr-my-email button[type=submit]").click()
        expect(frame.locator("#cr-my-email-status")).to_have_text(f"Your emails go to {OWN_ADDRESS} (campaign runs).")

        frame.get_by_role("link", name="Campaigns", exact=True).click()
        frame.get_by_role("link", name="cr_slow", exact=True).click()
        row = frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')
        expect(row.locator(".cr-status .cr-badge")).to_have_text("running")
        row.locator("td").nth(2).click()  # clicking the row opens the run

        status = frame.locator("#cr-run-status .cr-badge")
        expect(status).to_have_text("running")
        frame.locator("form#stop textarea").fill(NOTE)
        frame.locator("form#stop button[type=submit]").click()
        expect(frame.locator(".cr-flash.success")).to_have_text(
            f"Run {run_id} is stopping; you will get an email when it has stopped, and it will be on your work list."
        )
        expect(frame.locator(".cr-flash.warning")).to_have_count(0)  # no "No email could be sent"
        assert status.inner_text() in ("stopping", "stopped")
        expect(status).to_have_text("stopped", timeout=60_000)  # the page polls and refreshes itself
        history = frame.locator("#cr-history")
        expect(history).to_contain_text(NOTE)
        expect(history).to_contain_text(USER)

    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_slow stopped"
    assert message["X-Envelope-To"] == OWN_ADDRESS
    run = admin_api.get(f"/campaign-runs/campaigns/cr_slow/runs/{run_id}").json()
    assert [(h["action"], h["actor"], h["note"]) for h in run["history"]] == [("stop", USER, NOTE)]
