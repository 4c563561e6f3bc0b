"""Airflow's Campaign tab at 1,280 x 800 in headless Chromium on real Airflow processes: the embedded display
fits its frame without horizontal scrolling (an action menu opened too), the run schedule comes before About
and the campaign actions, and the plugin's own top bar is gone inside Airflow's UI (kept on the direct page)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.browser.support import PLUGIN, AirflowStack, chromium, failed_run, login, unpaused_api
from tests.support.fixtures import PASSWORD
from tests.support.shared_stack import SharedStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
DAG = "cr_campaign"
OVERFLOW = "(root) => ({scroll: root.scrollWidth, client: root.clientWidth})"  # of the frame's document


@pytest.fixture(scope="module")
def api(shared_stack_manager: SharedStack) -> Iterator[httpx.Client]:
    url = shared_stack_manager.up().url()
    with unpaused_api(url, USER, PASSWORD, (DAG,)) as client:  # the session's DB made it paused
        yield client


def test_campaign_tab_fits_1280_with_the_schedule_first(shared_stack: AirflowStack, api: httpx.Client) -> None:
    from playwright.sync_api import expect

    run_id = failed_run(api, DAG, "layout_with_a_long_run_id_that_must_wrap_in_its_cell")
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            login(page, shared_stack.url(), USER, PASSWORD)
            page.goto(f"{shared_stack.url()}/dags/{DAG}/plugin/campaign")
            frame = page.frame_locator("iframe")
            schedule_row = frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')
            expect(schedule_row).to_have_count(1, timeout=30_000)
            html = frame.locator("html")

            # Inside Airflow's tab: no second top bar, and nothing wider than the frame.
            assert html.evaluate("(el) => el.dataset.framed") == "1"
            expect(frame.locator("header.cr-top")).to_be_hidden()
            width = html.evaluate(OVERFLOW)
            assert width["scroll"] <= width["client"], width
            table = frame.locator("#cr-schedule").bounding_box()
            iframe = page.locator("iframe").bounding_box()
            assert table and iframe and table["x"] + table["width"] <= iframe["x"] + iframe["width"], (table, iframe)

            # The run schedule first, About and the campaign actions below it.
            schedule_top = frame.locator("#cr-schedule").evaluate("(el) => el.getBoundingClientRect().top")
            about_top = frame.locator("#cr-about-section").evaluate("(el) => el.getBoundingClientRect().top")
            actions_top = frame.locator("#cr-campaign-actions").evaluate("(el) => el.getBoundingClientRect().top")
            assert schedule_top < about_top < actions_top, (schedule_top, about_top, actions_top)
            assert schedule_top < 800

            # The row's action menu opens inside the frame: its buttons are on screen and still no scrolling.
            schedule_row.locator("details.cr-menu > summary").click()
            skip = schedule_row.get_by_role("button", name="Skip run")
            expect(skip).to_be_visible()
            box = skip.bounding_box()
            assert box and iframe["x"] <= box["x"] and box["x"] + box["width"] <= iframe["x"] + iframe["width"], box
            width = html.evaluate(OVERFLOW)
            assert width["scroll"] <= width["client"], width
            page.keyboard.press("Escape")  # the menu stays on the display (opening it is no click on the row)
            expect(frame.locator("#cr-schedule")).to_be_visible()
            assert frame.locator("html").evaluate("() => window.location.pathname").endswith(f"/display/{DAG}")

            # The direct page keeps the plugin's own top bar.
            page.goto(f"{shared_stack.url()}{PLUGIN}/display/{DAG}")
            expect(page.locator("header.cr-top")).to_be_visible()
            assert page.evaluate("() => document.documentElement.dataset.framed") is None
        finally:
            context.close()
