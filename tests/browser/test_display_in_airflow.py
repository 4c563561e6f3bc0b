"""The campaign display as its users see it, in headless Chromium on real Airflow processes.

- Skip and Restart in place, from a row's dialog, inside Airflow's Campaign tab: the row reads
  ``skipped`` while the user stays, is gone after a reload, and "Show skipped runs" lists it; a restart
  shows the new run. The skip is done with the keyboard only.
- axe-core (pinned in tests/browser/package-lock.json) finds no serious or critical violation on the
  campaigns page, the display, its action dialogs, the run page and the work list, in light and dark mode.
- The pages follow Airflow's colour mode (its ``theme`` in localStorage / the ``dark`` class of its page).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.support import (
    PLUGIN,
    AirflowStack,
    axe_source,
    axe_violations,
    campaign_status,
    chromium,
    failed_run,
    logged_in_page,
    login,
    trigger,
    unpaused_api,
    wait_until,
)
from tests.support.fixtures import PASSWORD
from tests.support.shared_stack import SharedStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "alice"
DAG = "cr_campaign"
DARK_BACKGROUND = "rgb(17, 24, 39)"


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


def row(frame: Any, run_id: str) -> Any:
    return frame.locator(f'#cr-schedule tr[data-run-id="{run_id}"]')


def open_menu(row_: Any) -> None:
    """Open the row's action menu with the mouse, unless it is open."""
    if not row_.locator("details.cr-menu").evaluate("(menu) => menu.open"):
        row_.locator("details.cr-menu > summary").click()


def tab_until_focused(page: Any, frame_selector: str, selector: str, limit: int = 200) -> None:
    """Press Tab until the element matching ``selector`` inside the iframe has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.frame_locator(frame_selector).locator(f"{selector}:focus")
        if focused.count() == 1:
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_skip_and_restart_from_the_rows_of_airflows_campaign_tab(
    stack: AirflowStack, api: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    skipped = failed_run(api, DAG, "skip")
    restarted = failed_run(api, DAG, "restart")
    tab = f"{stack.url()}/dags/{DAG}/plugin/campaign"
    page.goto(tab)
    frame = page.frame_locator("iframe")
    expect(row(frame, skipped).locator(".cr-status .cr-badge")).to_have_text("failed")

    # Skip with the keyboard only: Tab to the row's action menu, Enter opens it, Tab to "Skip run", Enter opens
    # the dialog on the note.
    tab_until_focused(page, "iframe", f'tr[data-run-id="{skipped}"] details.cr-menu > summary')
    page.keyboard.press("Enter")
    tab_until_focused(page, "iframe", f'tr[data-run-id="{skipped}"] button.cr-act[data-action="skip"]', limit=3)
    expect(row(frame, skipped).locator('button.cr-act[data-action="skip"]')).to_have_text("Skip run")
    page.keyboard.press("Enter")
    dialog = frame.locator("#cr-dialog-skip")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Skip run {skipped}")
    expect(dialog).to_contain_text("the campaign continues with its schedule")
    expect(dialog.locator("textarea")).to_be_focused()
    page.keyboard.type("Not needed this week")
    page.keyboard.press("Tab")  # Cancel
    page.keyboard.press("Tab")  # Skip run
    expect(dialog.locator("button[type=submit]")).to_be_focused()
    page.keyboard.press("Enter")

    # The display again, the row in its new status, and it stays through the in-place updates.
    expect(frame.locator(".cr-flash.success")).to_have_text(
        f"Run {skipped} is skipped; the campaign goes on with its schedule and an email is on its way to you."
    )
    expect(row(frame, skipped).locator(".cr-status .cr-badge")).to_have_text("skipped")
    assert "keep" not in (frame.locator("body").evaluate("() => window.location.href"))
    page.wait_for_timeout(4500)  # two polls of status.json
    expect(row(frame, skipped).locator(".cr-status .cr-badge")).to_have_text("skipped")
    assert campaign_status(api, DAG, skipped) == "skipped"

    # Reload (F5): gone. "Show skipped runs" lists it.
    page.reload()
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_contain_text(DAG)
    expect(row(frame, restarted)).to_have_count(1)
    expect(row(frame, skipped)).to_have_count(0)
    frame.get_by_role("link", name="Show skipped runs").click()
    expect(row(frame, skipped).locator(".cr-status .cr-badge")).to_have_text("skipped")
    frame.get_by_role("link", name="Hide skipped runs").click()
    expect(row(frame, skipped)).to_have_count(0)

    # Restart from its row (mouse this time): the dialog says what happens, the new run shows up.
    open_menu(row(frame, restarted))
    row(frame, restarted).get_by_role("button", name="Restart run").click()
    dialog = frame.locator("#cr-dialog-restart")
    expect(dialog).to_contain_text("a new run is created and started")
    dialog.locator("textarea").fill("Audience fixed")
    dialog.get_by_role("button", name="Restart run").click()
    expect(frame.locator(".cr-flash.success")).to_contain_text(f"Run {restarted} is skipped and restarted as run ")
    new_row = frame.locator('#cr-schedule tr[data-run-id^="restart__"]')
    expect(new_row).to_have_count(1)
    expect(new_row).to_contain_text(f"restart of {restarted}")
    expect(row(frame, restarted).locator(".cr-status .cr-badge")).to_have_text("skipped")
    page.reload()
    frame = page.frame_locator("iframe")
    expect(frame.locator('#cr-schedule tr[data-run-id^="restart__"]')).to_have_count(1)
    expect(row(frame, restarted)).to_have_count(0)
    frame.get_by_role("link", name="Show skipped runs").click()
    expect(row(frame, restarted).locator(".cr-status .cr-badge")).to_have_text("skipped")


def test_no_serious_or_critical_accessibility_violations(stack: AirflowStack, api: httpx.Client, page: Any) -> None:
    from playwright.sync_api import expect

    source = axe_source()
    base = stack.url()
    failed = failed_run(api, DAG, "axe")
    running = f"manual__axe_running_{failed.rsplit('_', 1)[1]}"
    trigger(api, "cr_slow", running)
    stopped = api.post(f"/campaign-runs/campaigns/cr_slow/runs/{running}/stop", json={"note": "for the work list"})
    assert stopped.status_code == 200, stopped.text
    wait_until(lambda: campaign_status(api, "cr_slow", running) == "stopped", timeout=120)

    found: dict[str, list[str]] = {}
    for name, path in (
        ("campaigns page", f"{PLUGIN}/list"),
        ("display", f"{PLUGIN}/display/{DAG}"),
        ("run page", f"{PLUGIN}/display/{DAG}/run/{failed}"),
        ("stopped run page", f"{PLUGIN}/display/cr_slow/run/{running}"),
        ("work list", f"{PLUGIN}/worklist"),
        ("not a campaign", f"{PLUGIN}/display/cr_plain"),
    ):
        page.goto(f"{base}{path}")
        found[name] = axe_violations(page, source)
    page.goto(f"{base}{PLUGIN}/display/{DAG}")
    for action in ("restart", "skip"):
        open_menu(row(page, failed))
        row(page, failed).get_by_role("button", name=f"{action.capitalize()} run").click()
        expect(page.locator(f"#cr-dialog-{action}")).to_be_visible()
        found[f"{action} dialog"] = axe_violations(page, source)
        page.keyboard.press("Escape")  # closes the dialog, focus back on its button
        expect(page.locator(f"#cr-dialog-{action}")).to_be_hidden()
        expect(row(page, failed).get_by_role("button", name=f"{action.capitalize()} run")).to_be_focused()
    page.emulate_media(color_scheme="dark")
    for name, path in (("display (dark)", f"{PLUGIN}/display/{DAG}"), ("work list (dark)", f"{PLUGIN}/worklist")):
        page.goto(f"{base}{path}")
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        found[name] = axe_violations(page, source)
    assert {name: v for name, v in found.items() if v} == {}
    assert len(found) == 10


def test_pages_follow_airflows_colour_mode(stack: AirflowStack, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    try:
        page = context.new_page()
        login(page, stack.url(), USER, PASSWORD)
        # Airflow's UI keeps the user's choice in localStorage "theme" and puts class "dark" on its <html>.
        page.evaluate("() => window.localStorage.setItem('theme', 'dark')")
        page.goto(f"{stack.url()}/dags/{DAG}/plugin/campaign")
        page.wait_for_function("() => document.documentElement.classList.contains('dark')")
        frame = page.frame_locator("iframe")
        frame.locator("h1").wait_for()
        inner = frame.locator("html")
        assert inner.evaluate("(el) => el.dataset.theme") == "dark"
        assert inner.evaluate("(el) => getComputedStyle(document.body).backgroundColor") == DARK_BACKGROUND
        assert inner.evaluate("(el) => getComputedStyle(el).colorScheme") == "dark"

        # Switching Airflow to light mode switches the embedded page without a reload.
        page.evaluate("() => document.documentElement.classList.replace('dark', 'light')")
        wait_until(lambda: inner.evaluate("(el) => el.dataset.theme") == "light", timeout=10)
        assert inner.evaluate("(el) => getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"

        # Outside Airflow's UI the page follows the system setting.
        alone = context.new_page()
        alone.emulate_media(color_scheme="dark")
        alone.evaluate("() => 0")
        alone.goto(f"{stack.url()}{PLUGIN}/list")
        alone.evaluate("() => window.localStorage.removeItem('theme')")
        alone.reload()
        assert alone.evaluate("() => document.documentElement.dataset.theme") == "dark"
        assert re.fullmatch(
            r"rgb\(\d+, \d+, \d+\)", alone.evaluate("() => getComputedStyle(document.body).backgroundColor")
        )
        assert alone.evaluate("() => getComputedStyle(document.body).backgroundColor") == DARK_BACKGROUND
    finally:
        context.close()
