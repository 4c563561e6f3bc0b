"""A refused Stop / Restart / Skip says its real reason on every way in, in headless Chromium on real Airflow.

The ways in: Airflow's Campaigns menu (the nav frame, whose URL Airflow keeps in step with its own), the DAG's
Campaign tab, the DAG run's Campaign run tab and the plugin's page opened directly. The reasons: a note of
spaces where one is required, and a Restart while the campaign is paused (with its unpause choice). Run ids
carry ``:`` and ``+``, as those of Run now and of the schedule do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.support import (
    PLUGIN,
    AirflowStack,
    campaign_status,
    chromium,
    failed_run,
    logged_in_page,
    trigger,
    unpaused_api,
    wait_until,
)
from tests.support.fixtures import PASSWORD
from tests.support.shared_stack import SharedStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
DAG = "cr_campaign"
NOTE_REQUIRED = "A note is required: say why you take this action."
PAUSED = f"Campaign '{DAG}' is paused, so a restarted run would not start."
FALSE_MESSAGE = "does not exist"


@pytest.fixture
def stack(shared_stack: AirflowStack) -> AirflowStack:
    return shared_stack


@pytest.fixture(scope="module")
def api(shared_stack_manager: SharedStack) -> Iterator[httpx.Client]:
    url = shared_stack_manager.up().url()
    with unpaused_api(url, USER, PASSWORD, (DAG, "cr_slow")) as client:  # the session's DB made them paused
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Any, stack: AirflowStack) -> Iterator[Any]:
    with logged_in_page(browser, stack.url(), USER, PASSWORD) as logged_in:
        yield logged_in


@pytest.fixture
def paused(api: httpx.Client) -> Iterator[Callable[[str], None]]:
    """Pause a campaign for the test; every paused one is resumed at its end."""
    done: list[str] = []

    def pause(dag_id: str) -> None:
        assert api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": True}).status_code == 200
        done.append(dag_id)

    yield pause
    for dag_id in done:
        api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})


def listed(page: Any, frame: Any, wanted: Any) -> Any:
    """``wanted`` once the framed page lists it, reloading Airflow's page while it does not.

    Seen on these freshly started stacks: a campaigns page or work list now and then lists no campaign of the
    user's (Airflow's answer of the DAGs they may read); the next load lists them.
    """
    for _ in range(10):
        frame.locator("h1").first.wait_for()
        if wanted.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    return wanted


def open_run(page: Any, base: str, way: str, run_id: str) -> Any:
    """The run's page (or, in the DAG tab, its row of the run schedule) opened the given way; its frame."""
    from playwright.sync_api import expect

    if way == "nav":  # Airflow's Campaigns menu, then the campaign and the run, by clicks inside the frame
        page.goto(f"{base}/")
        page.get_by_role("link", name="Campaigns").first.click()
        page.wait_for_url("**/plugin/campaigns**")
        frame = page.frame_locator("iframe")
        listed(page, frame, frame.get_by_role("link", name=DAG, exact=True)).click()
        frame.get_by_role("link", name=run_id, exact=True).click()
    elif way == "dag tab":
        page.goto(f"{base}/dags/{DAG}/plugin/campaign")
        frame = page.frame_locator("iframe")
        expect(frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')).to_have_count(1)
        return frame
    elif way == "run tab":
        page.goto(f"{base}/dags/{DAG}/runs/{quote(run_id, safe='')}/plugin/campaign-run")
        frame = page.frame_locator("iframe")
    else:
        page.goto(f"{base}{PLUGIN}/display/{DAG}/run/{quote(run_id, safe='')}")
        frame = page.locator(":root")
    expect(frame.locator("#cr-run-id")).to_have_text(run_id)
    return frame


def send(frame: Any, way: str, run_id: str, action: str, note: str) -> None:
    """Send the action's form with ``note``: the row's dialog in the DAG tab, the run page's form elsewhere."""
    if way == "dag tab":
        row = frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')
        row.locator("details.cr-menu > summary").click()  # the row's action menu
        row.get_by_role("button", name=f"{action.capitalize()} run").click()
        form = frame.locator(f"#cr-dialog-{action} form")
    else:
        form = frame.locator(f"form#{action}")
    form.locator("textarea").fill(note)
    form.locator("button[type=submit]").click()


def settled(page: Any, frame: Any) -> None:
    """Past the frame's load and anything it sets off (Airflow keeps the nav frame's URL in step with its own)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    frame.locator("body").wait_for()


@pytest.mark.parametrize("way", ["nav", "dag tab", "run tab", "direct"])
def test_a_refusal_says_its_real_reason_on_every_way_in(
    stack: AirflowStack, api: httpx.Client, page: Any, paused: Callable[[str], None], way: str
) -> None:
    from playwright.sync_api import expect

    run_id = failed_run(api, DAG, f"2026-12-07T10:00:00.123456+00:00_{way.replace(' ', '_')}")
    base = stack.url()

    # Skip with a note of spaces: the note is required.
    frame = open_run(page, base, way, run_id)
    send(frame, way, run_id, "skip", "   ")
    expect(frame.locator(".cr-flash.danger")).to_contain_text(NOTE_REQUIRED)
    settled(page, frame)
    expect(frame.locator(".cr-flash.danger")).to_contain_text(NOTE_REQUIRED)
    expect(frame.locator("form#skip .cr-error")).to_contain_text(NOTE_REQUIRED)
    expect(frame.locator("body")).not_to_contain_text(FALSE_MESSAGE)
    assert campaign_status(api, DAG, run_id) == "failed"

    # Restart while the campaign is paused: why, and the choice to unpause with it.
    paused(DAG)
    frame = open_run(page, base, way, run_id)
    send(frame, way, run_id, "restart", "Audience fixed")
    expect(frame.locator(".cr-flash.danger")).to_contain_text(PAUSED)
    settled(page, frame)
    expect(frame.locator(".cr-flash.danger")).to_contain_text(PAUSED)
    expect(frame.locator("form#restart input[name=unpause]")).to_be_visible()
    expect(frame.locator("form#restart textarea")).to_have_value("Audience fixed")
    expect(frame.locator("body")).not_to_contain_text(FALSE_MESSAGE)

    # Reloading Airflow's page (opening the refused page's address, direct) shows the run, never a false message.
    if way == "direct":
        page.goto(page.url)  # a GET of the action's address
    else:
        page.reload()
    again = page.frame_locator("iframe") if way != "direct" else page.locator(":root")
    expect(again.locator("body")).not_to_contain_text(FALSE_MESSAGE)
    if way == "dag tab":
        expect(again.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')).to_have_count(1)
    else:
        expect(again.locator("#cr-run-id")).to_have_text(run_id)
    assert campaign_status(api, DAG, run_id) == "failed"


def test_a_restart_refused_from_the_work_list_in_the_nav_frame_says_why(
    stack: AirflowStack, api: httpx.Client, page: Any, paused: Callable[[str], None]
) -> None:
    from playwright.sync_api import expect

    run_id = trigger(api, "cr_slow", "manual__2026-12-07T11:00:00.5+00:00_worklist")
    stopped = api.post(f"/campaign-runs/campaigns/cr_slow/runs/{run_id}/stop", json={"note": "for the work list"})
    assert stopped.status_code == 200, stopped.text
    wait_until(lambda: campaign_status(api, "cr_slow", run_id) == "stopped", timeout=120)
    paused("cr_slow")

    page.goto(f"{stack.url()}/")
    page.get_by_role("link", name="Campaigns").first.click()
    page.wait_for_url("**/plugin/campaigns")
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name="My work list").click()
    entry = listed(page, frame, frame.locator(f'#cr-worklist tr[data-run-id="{run_id}"]'))
    entry.get_by_text("Actions", exact=True).click()  # the row's one action menu holds its forms
    entry.locator("form.cr-restart textarea").fill("Segment fixed")
    entry.locator("form.cr-restart button[type=submit]").click()
    message = "Campaign 'cr_slow' is paused, so a restarted run would not start."
    expect(frame.locator(".cr-flash.danger")).to_contain_text(message)
    settled(page, frame)
    expect(frame.locator(".cr-flash.danger")).to_contain_text(message)
    expect(frame.locator("form#restart input[name=unpause]")).to_be_visible()
    expect(frame.locator("body")).not_to_contain_text(FALSE_MESSAGE)
    assert campaign_status(api, "cr_slow", run_id) == "stopped"
