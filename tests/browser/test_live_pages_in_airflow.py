"""Pages left open stay right, in headless Chromium on real Airflow processes: nothing half-stale.

A run page opened while its run is queued follows it without a reload: status, task rows (state and try),
tasks done, the Messages bar that appears with the first report, channel counts. The DAG's Campaign tab
follows the run's messages (sent of total, failed, in doubt) in its run schedule.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.support import PLUGIN, AirflowStack, campaign_status, trigger, wait_until
from tests.browser.test_refusals_in_airflow import api, browser, page, stack  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAG = "cr_slow"  # its send_email runs for minutes and reports nothing itself: the test reports for it


def report(run_id: str, value: dict[str, Any]) -> None:
    """What the run's ``send_email`` task leaves in XCom when it reports progress (the stack's metadata DB)."""
    from tests.campaign_runs.core.test_restart_options import report_progress

    report_progress(DAG, run_id, "email", value)


@pytest.fixture
def slow_run(api: httpx.Client) -> Iterator[str]:  # noqa: F811
    """A fresh run of cr_slow (its id with ``:`` and ``+``), stopped at the end of the test."""
    run_id = trigger(api, DAG, f"manual__2026-12-07T12:00:00+00:00_live_{time.time_ns()}")
    yield run_id
    api.post(f"/campaign-runs/campaigns/{DAG}/runs/{run_id}/stop", json={"note": "end of the test"})
    # Stopped here, with its email, not by the next module's stack (whose test would receive that email).
    wait_until(lambda: campaign_status(api, DAG, run_id) == "stopped", timeout=120)


def test_a_run_page_left_open_follows_the_whole_run(
    stack: AirflowStack,  # noqa: F811
    page: Any,  # noqa: F811
    slow_run: str,
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{stack.url()}{PLUGIN}/display/{DAG}/run/{quote(slow_run, safe=':+')}")
    expect(page.locator("#cr-run-id")).to_have_text(slow_run)
    page.evaluate("() => { window.crOpenedOnce = true; }")  # gone if the page reloads
    task = page.locator('#cr-tasks-table tr[data-task-id="send_email"]')

    expect(task.locator(".cr-badge")).to_have_text("running", timeout=120_000)
    expect(task.locator("td").nth(2)).to_have_text("1")
    expect(page.locator("#cr-run-status .cr-badge")).to_have_text("running")
    expect(page.locator("#cr-overall")).to_have_count(0)  # no channel has reported yet

    report(slow_run, {"total": 40, "sent": 10, "failed": 2, "in_doubt": 1})
    expect(page.locator("#cr-overall .cr-percent")).to_have_text("30%")
    channel = page.locator('#cr-channels tr[data-channel="email"]')
    expect(channel.locator(".cr-sent")).to_have_text("10")
    expect(channel.locator(".cr-in-doubt")).to_have_text("1")
    expect(channel.locator(".cr-total")).to_have_text("40")
    expect(page.locator("#cr-tasks")).to_contain_text("0 of 1 done")
    assert page.evaluate("() => window.crOpenedOnce === true"), "the page reloaded"


def test_the_campaign_tab_follows_a_run_s_messages(
    stack: AirflowStack,  # noqa: F811
    page: Any,  # noqa: F811
    slow_run: str,
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{stack.url()}/dags/{DAG}/plugin/campaign")
    frame = page.frame_locator("iframe")
    cell = frame.locator(f'#cr-schedule tr[data-run-id="{slow_run}"] .cr-messages')
    expect(cell.locator(".cr-messages-text")).to_have_text("not reported")
    frame.locator("body").evaluate("() => { window.crOpenedOnce = true; }")

    report(slow_run, {"total": 300, "sent": 182, "failed": 3, "in_doubt": 2})
    expect(cell.locator(".cr-messages-text")).to_have_text("182 of 300 sent, 3 failed, 2 in doubt")
    expect(cell.locator(".cr-percent")).to_have_text("61%")
    assert frame.locator("body").evaluate("() => window.crOpenedOnce === true"), "the page reloaded"
