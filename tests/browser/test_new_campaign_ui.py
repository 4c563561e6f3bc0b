"""New campaign, Configure and the campaign actions in headless Chromium, on real Airflow processes.

A real api-server, dag-processor and scheduler run on the test session's metadata DB with a DAGs folder of
their own: the campaign factory, the one YAML loader of ``dags/campaigns`` and the test DAGs. Alice creates a
campaign through the form (the schedule preview says it in words, with 10 fire times), saves it, waits on the
campaigns page until the dag-processor has loaded it, configures it (and waits again until Airflow has re-read
it), starts it with Run now, watches the run finish on its page, then pauses and resumes the campaign. With
``CAMPAIGN_RUNS_SCREENSHOTS=1`` the test also writes the README's ``docs/screenshots/new_campaign.png`` and
``configure.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import PLUGIN, REPO, chromium, login, running_stack, wait_until_listed
from tests.support.fixtures import PASSWORD, TEST_DAGS, SmtpSink
from tests.support.processes import AirflowStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
DAG_ID = "spring_sale_ui"
SCREENSHOTS = REPO / "docs" / "screenshots"


def dags_folder(root: Path) -> Path:
    """A DAGs folder with the campaigns loader (no campaign yet) and the test DAGs."""
    folder = root / "dags"
    (folder / "campaigns").mkdir(parents=True)
    shutil.copyfile(REPO / "dags" / "campaigns" / "campaigns.py", folder / "campaigns" / "campaigns.py")
    shutil.copyfile(TEST_DAGS / "campaign_test_dags.py", folder / "campaign_test_dags.py")
    return folder


@pytest.fixture
def stack(tmp_path: Path, smtp_server: SmtpSink, airflow_db: None) -> Iterator[AirflowStack]:
    """api-server + dag-processor + scheduler; the dag-processor re-reads the campaigns loader every 2 s."""
    extra = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2"}
    with running_stack(smtp_server.port, tmp_path, dags_folder(tmp_path), extra) as processes:
        yield processes
    # The DAG this test created is left to the session's throw-away metadata DB.


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def screenshot(page: Any, name: str, tmp_path: Path) -> None:
    """A screenshot of the page: into the README's folder when asked for, else next to the test's files."""
    folder = SCREENSHOTS if os.environ.get("CAMPAIGN_RUNS_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(folder / name), full_page=True)


def fill_new_campaign(page: Any) -> None:
    """The New form as a marketer fills it: a weekly email to a small audience."""
    page.fill('[name="id"]', DAG_ID)
    page.fill('[name="description"]', "Spring sale: weekly email to the test segment.")
    page.fill('[name="owner"]', "promotions")
    page.fill('[name="owner_email"]', "promotions@example.com")
    page.check('input[name="schedule.mode"][value="cron"]')
    page.fill('[name="schedule.timezone"]', "Europe/Paris")
    page.fill('[name="schedule.cron"]', "0 9 * * MON")
    page.fill('[name="schedule.start_date"]', "2026-01-05")
    page.fill('[name="audience.segment"]', "testers")
    page.fill('[name="audience.size"]', "5")
    page.fill('[name="audience.criteria"]', "plan: gold\ncountries: [FR, DE]")
    page.check('[name="channels.email.enabled"]')
    page.fill('[name="channels.email.subject"]', "Spring sale for you, $first_name")
    page.fill('[name="channels.email.body"]', "Hello $first_name,\nyour $plan plan gets 20% off this week.")
    page.fill('[name="channels.email.batch_size"]', "5")
    page.fill('[name="note"]', "First spring campaign")


def test_create_configure_run_now_pause_and_resume_a_campaign(
    stack: AirflowStack, browser: Any, smtp_server: SmtpSink, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base = stack.url()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    login(page, base, USER, PASSWORD)

    # New: from the campaigns page, with a live preview of the schedule.
    page.goto(f"{base}{PLUGIN}/list")
    page.locator("#cr-new-campaign").click()
    expect(page.locator("h1")).to_have_text("New campaign")
    fill_new_campaign(page)
    expect(page.locator('[data-slot="schedule.preset"]')).to_be_hidden()  # the cron kind shows the cron field
    description = page.locator("#cr-preview-description")
    expect(description).to_have_text("At 09:00, only on Monday")
    rows = page.locator("#cr-preview-times tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#cr-preview-zone")).to_have_text("Europe/Paris")
    first = rows.first.locator("td")
    expect(first.nth(1)).to_have_text(re.compile(r" 09:00:00 CES?T$"))
    expect(first.nth(2)).to_have_text(re.compile(r" 0[78]:00:00 UTC$"))
    page.fill('[name="schedule.cron"]', "61 9 * * MON")
    expect(description).to_have_text(re.compile("is not a valid five-field cron expression"))
    expect(rows).to_have_count(0)
    page.fill('[name="schedule.cron"]', "0 9 * * MON")
    expect(rows).to_have_count(10)
    screenshot(page, "new_campaign.png", tmp_path)

    # Save: listed at once, waiting for Airflow, until the dag-processor has parsed it (unless it already has:
    # the page after the save then lists the campaign itself).
    page.locator("#cr-save").click()
    expect(page.locator(".cr-flash.success")).to_have_text(f"{DAG_ID}: Saved; waiting for Airflow to load it.")
    if page.locator(f'#cr-campaigns tr[data-dag-id="{DAG_ID}"]').count() == 0:
        expect(page.locator(f'#cr-waiting li[data-waiting-id="{DAG_ID}"]')).to_contain_text(
            "waiting for Airflow to load it"
        )
    wait_until_listed(page, stack, DAG_ID)

    # Configure: the same form, prefilled; the save is version 2 in the campaign's history.
    page.get_by_role("link", name=DAG_ID, exact=True).click()
    expect(page.locator("h1")).to_contain_text(DAG_ID)
    page.locator("#cr-configure").click()
    expect(page.locator('[name="schedule.cron"]')).to_have_value("0 9 * * MON")
    page.fill('[name="audience.size"]', "4")
    page.fill('[name="note"]', "Smaller test audience")
    expect(page.locator("#cr-preview-times tbody tr")).to_have_count(10)
    screenshot(page, "configure.png", tmp_path)
    page.locator("#cr-save").click()
    expect(page.locator(".cr-flash.success")).to_contain_text("Saved; waiting for Airflow to reload it.")
    expect(page.locator('#cr-versions tr[data-version="2"]')).to_contain_text("Smaller test audience")
    expect(page.locator('#cr-versions tr[data-version="1"]')).to_contain_text("First spring campaign")
    # The edit is listed as waiting too until Airflow has re-read it; Run now then starts the new version.
    page.locator("header.cr-top").get_by_role("link", name="Campaigns", exact=True).click()
    wait_until_listed(page, stack, DAG_ID)
    page.get_by_role("link", name=DAG_ID, exact=True).click()

    # Run now, then watch the run on its page until it has sent its emails.
    page.fill("#cr-campaign-run_now textarea[name=note]", "Launch")
    page.locator("#cr-campaign-run_now button[type=submit]").click()
    expect(page.locator(".cr-flash.success")).to_contain_text("Started run manual__")
    expect(page.locator("#cr-dag-version")).to_have_text(re.compile(r"^v\d+ "))
    status = page.locator("#cr-run-status .cr-badge")
    seen = status.inner_text()
    assert seen in ("queued", "running", "completed"), seen
    try:
        expect(status).to_have_text("completed", timeout=240_000)  # the page polls and reloads itself
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    expect(page.locator('#cr-channels tr[data-channel="email"] .cr-sent')).to_have_text(re.compile(r"^[45]$"))

    # Pause, then Resume with "none": the campaign is paused in between, and both are in the history.
    page.locator("#cr-run a", has_text=DAG_ID).first.click()
    page.fill("#cr-campaign-pause textarea[name=note]", "Stock is low")
    page.locator("#cr-campaign-pause button[type=submit]").click()
    expect(page.locator(".cr-flash.success")).to_have_text(f"Paused {DAG_ID}.")
    expect(page.locator("h1 .cr-badge.paused")).to_have_count(1)
    expect(page.locator("#cr-campaign-run_now")).to_have_count(0)
    resume = page.locator("#cr-campaign-resume")
    expect(resume).to_contain_text("Run only the most recent missed slot")
    resume.locator('input[name="missed"][value="none"]').check()
    resume.locator("textarea[name=note]").fill("Restocked")
    resume.locator("button[type=submit]").click()
    expect(page.locator(".cr-flash.success")).to_contain_text(f"Resumed {DAG_ID}")
    expect(page.locator("h1 .cr-badge.paused")).to_have_count(0)
    kinds = page.locator("#cr-versions tr").evaluate_all("rows => rows.map(r => r.dataset.kind).filter(Boolean)")
    assert kinds[:3] == ["resume", "pause", "run_now"], kinds
