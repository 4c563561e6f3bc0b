"""Where Airflow's own UI shows a campaign's state next to the plugin's, the plugin's page says why they differ.

In headless Chromium on the shared Airflow stack (issue 25, defect 11):

- a run stopped through the plugin: the DAG run's page shows Airflow's Failed badge, and the Campaign run tab
  inside it reads "stopped" and says that Airflow records a stopped run as failed;
- Pause and Resume in the DAG's Campaign tab: the plugin's message says that Airflow's own pause switch, above
  the tab, shows the change after a reload of Airflow's page; reloaded, the switch agrees.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.support import (
    AirflowStack,
    campaign_status,
    chromium,
    logged_in_page,
    trigger,
    unpaused_api,
    wait_until,
)
from tests.support.fixtures import PASSWORD
from tests.support.shared_stack import SharedStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
SWITCH = '[data-testid="toggle-pause"]'


@pytest.fixture
def stack(shared_stack: AirflowStack) -> AirflowStack:
    return shared_stack


@pytest.fixture(scope="module")
def api(shared_stack_manager: SharedStack) -> Iterator[httpx.Client]:
    url = shared_stack_manager.up().url()
    with unpaused_api(url, USER, PASSWORD, ("cr_campaign", "cr_slow")) as client:  # the session's DB made them paused
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Any, stack: AirflowStack) -> Iterator[Any]:
    with logged_in_page(browser, stack.url(), USER, PASSWORD) as logged_in:
        yield logged_in


def test_the_run_tab_says_why_airflow_shows_a_stopped_run_as_failed(
    stack: AirflowStack, api: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    run_id = trigger(api, "cr_slow", f"manual__stopped_{time.time_ns()}")
    stopped = api.post(f"/campaign-runs/campaigns/cr_slow/runs/{run_id}/stop", json={"note": "wrong list"})
    assert stopped.status_code == 200, stopped.text
    wait_until(lambda: campaign_status(api, "cr_slow", run_id) == "stopped", timeout=120)
    assert api.get(f"/api/v2/dags/cr_slow/dagRuns/{run_id}").json()["state"] == "failed"

    page.goto(f"{stack.url()}/dags/cr_slow/runs/{run_id}/plugin/campaign-run")

    frame = page.frame_locator("iframe")
    expect(frame.locator("#cr-run-status")).to_have_text("stopped")
    expect(frame.locator("#cr-airflow-state")).to_have_text(
        "Airflow's own pages show this run as Failed: Airflow has no stopped state, and records a stopped run as "
        "failed. Campaign Runs shows it as stopped because it was stopped with Stop.",
        use_inner_text=True,
    )
    expect(page.locator("body")).to_contain_text("Failed")  # Airflow's own badge, outside the tab's frame


def test_pause_and_resume_say_when_airflows_switch_shows_it_and_after_a_reload_it_does(
    stack: AirflowStack, api: httpx.Client, page: Any
) -> None:
    from campaign_runs.pages.fab.definitions import AIRFLOW_SWITCH
    from playwright.sync_api import expect

    page.goto(f"{stack.url()}/dags/cr_campaign/plugin/campaign")
    expect(page.locator(SWITCH).locator("input")).to_be_checked()  # active
    frame = page.frame_locator("iframe")

    for action, label, active in (("pause", "Pause", False), ("resume", "Resume", True)):
        form = frame.locator(f"#cr-campaign-{action}")
        form.locator("textarea").fill(f"{label} for the test")
        form.get_by_role("button", name=label).click()
        expect(frame.locator(".cr-flash.info")).to_have_text(AIRFLOW_SWITCH)
        assert api.get("/api/v2/dags/cr_campaign").json()["is_paused"] is not active

        page.reload()

        expect(page.locator(SWITCH).locator("input")).to_be_checked(checked=active)
