"""The campaign pages in headless Chromium, inside Airflow's own UI, on real Airflow processes.

A real api-server, dag-processor and scheduler (LocalExecutor) run on the test session's metadata DB;
Alice logs in through Airflow's login page, opens Campaigns from Airflow's navigation, stops a
running ``cr_slow`` run with a note, watches it go ``stopping`` then ``stopped``, finds it on her
work list, restarts it and sees the new run in the run schedule. (The README's screenshots come from
``python -m scripts.screenshots``, not from this test.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.support import api_client, chromium, trigger
from tests.support.fixtures import PASSWORD, SmtpSink
from tests.support.processes import AirflowStack, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"


@pytest.fixture
def stack(shared_stack: AirflowStack) -> AirflowStack:
    """api-server + dag-processor + scheduler on the session's metadata DB (``tests.support.shared_stack``)."""
    return shared_stack


@pytest.fixture
def smtp_server(shared_mail: SmtpSink) -> SmtpSink:
    """The stack's SMTP server, holding only this test's emails."""
    return shared_mail


@pytest.fixture
def api(stack: AirflowStack) -> Iterator[httpx.Client]:
    """Airflow's public REST API as Alice (a JWT from ``/auth/token``)."""
    client = api_client(stack.url(), USER, PASSWORD)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download)."""
    with chromium() as instance:
        yield instance


def task_state(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> str | None:
    response = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    return response.json().get("state") if response.status_code == 200 else None


def test_stop_and_restart_a_run_from_airflows_ui(
    stack: AirflowStack, api: httpx.Client, browser: Any, smtp_server: SmtpSink
) -> None:
    from playwright.sync_api import expect

    assert api.patch("/api/v2/dags/cr_slow", json={"is_paused": False}).status_code == 200
    # A freshly started dag-processor re-registers the test DAGs; Airflow answers 404 for them meanwhile.
    run_id = trigger(api, "cr_slow", f"manual__ui_{time.time_ns()}")
    try:
        wait_until(lambda: task_state(api, "cr_slow", run_id, "send_email") == "running", timeout=180)
    except AssertionError:
        raise AssertionError(stack.logs()) from None

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(30_000)
    # Log in through Airflow's own login page.
    page.goto(f"{stack.url()}/")
    page.wait_for_url("**/auth/login/**")
    page.fill('input[name="username"]', USER)
    page.fill('input[name="password"]', PASSWORD)
    page.locator('input[type="submit"], button[type="submit"]').first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)

    # Airflow's navigation has the Campaigns entry; it opens the campaigns page inside Airflow's UI.
    page.get_by_role("link", name="Campaigns").first.click()
    page.wait_for_url("**/plugin/campaigns")
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name="cr_slow", exact=True).click()
    expect(frame.locator("h1")).to_contain_text("cr_slow")
    row = frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')
    expect(row.locator(".cr-status .cr-badge")).to_have_text("running")

    # Run details: Stop with a note.
    row.locator("td").nth(2).click()  # clicking the row opens the run
    status = frame.locator("#cr-run-status .cr-badge")
    expect(status).to_have_text("running")
    expect(frame.locator("#cr-run")).to_contain_text(USER)  # triggered by
    frame.locator("form#stop textarea").fill("Wrong segment <b>now</b>")
    frame.locator("form#stop button[type=submit]").click()
    expect(frame.locator(".cr-flash.success")).to_have_text(
        f"Run {run_id} is stopping; you will get an email when it has stopped, and it will be on your work list."
    )
    first_status = status.inner_text()
    assert first_status in ("stopping", "stopped")
    expect(status).to_have_text("stopped", timeout=60_000)  # the page polls and refreshes itself
    expect(frame.locator("#cr-history")).to_contain_text("Wrong segment <b>now</b>")
    expect(frame.locator("form#restart")).to_be_visible()
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_slow stopped"

    # My work list: Restart it right there.
    frame.get_by_role("link", name="My work list").click()
    entry = frame.locator(f'#cr-worklist tr[data-run-id="{run_id}"]')
    expect(entry.locator(".cr-note")).to_have_text("Wrong segment <b>now</b>")
    entry.get_by_text("Actions", exact=True).click()  # the row's one action menu holds its forms
    entry.locator("form.cr-restart textarea").fill("Segment fixed")
    entry.locator("form.cr-restart button[type=submit]").click()
    expect(frame.locator(".cr-flash.success")).to_contain_text(
        f"Run {run_id} is skipped and restarted as run restart__"
    )
    expect(frame.locator(f'#cr-worklist tr[data-run-id="{run_id}"]')).to_have_count(0)
    smtp_server.wait_for(2)

    # The new run is in the schedule; the restarted one is hidden after the refresh.
    frame.get_by_role("link", name="Campaigns", exact=True).click()
    frame.get_by_role("link", name="cr_slow", exact=True).click()
    new_row = frame.locator('#cr-schedule tr[data-run-id^="restart__"]')
    expect(new_row).to_have_count(1)
    expect(new_row).to_contain_text(f"restart of {run_id}")
    expect(new_row.locator(".cr-status .cr-badge")).to_have_text(re.compile("^(queued|running)$"))
    expect(frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')).to_have_count(0)

    # The DAG page and the DAG run page of Airflow's UI carry the campaign pages as tabs.
    page.goto(f"{stack.url()}/dags/cr_slow/plugin/campaign")
    expect(page.frame_locator("iframe").locator("h1")).to_contain_text("cr_slow")
    page.goto(f"{stack.url()}/dags/cr_slow/runs/{run_id}/plugin/campaign-run")
    expect(page.frame_locator("iframe").locator("#cr-run-id")).to_have_text(run_id)
    print(f"\nstatus right after Stop: {first_status}")
