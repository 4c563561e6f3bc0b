"""The plugin's own pages (``/campaign-runs/ui``, SimpleAuthManager) as ``test_views_refusals.py`` and
``test_views_progress.py`` check FAB's: a refused action's address, the run page's poll, the schedule's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.campaign_runs.pages.asgi.test_campaigns import UI, app, login  # noqa: F401  (fixture)
from tests.campaign_runs.pages.fab.test_campaigns import push_progress
from tests.campaign_runs.pages.fab.test_progress import ALL_DONE, live_parts, schedule_cell, set_task_states, task_cells
from tests.campaign_runs.pages.fab.test_refusals import RUN_ID, check_refused_address


def test_a_refused_action_s_address_reads_back_unchanged_and_leads_to_the_run(
    app: Any,  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    run_id = make_run("cr_campaign", state="failed", run_id=RUN_ID)
    check_refused_address(login(app, "alice"), UI, run_id)


def test_the_run_page_s_poll_and_the_schedule_say_what_the_run_has_done(
    app: Any,  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    running = make_run("cr_campaign", state="running")
    set_task_states("cr_campaign", running, {"build_audience": "success", "send_email": "running"})
    push_progress("cr_campaign", running, "send_email", {"channel": "email", "total": 40, "sent": 10, "failed": 2})
    stopped = make_run("cr_campaign", state="failed", ti_states=ALL_DONE)
    push_progress("cr_campaign", stopped, "send_email", {"channel": "email", "total": 300, "sent": 182, "failed": 0})
    client = login(app, "alice")

    data = client.get(f"{UI}/display/cr_campaign/run/{running}/status.json").json()
    parts = live_parts(data["html"])
    assert "1 of 4 done" in parts["cr-run"] and "Messages 30%" in parts["cr-run"]
    assert task_cells(data["html"])["send_email"] == ("running", "1")
    assert 'class="cr-flash' not in data["html"]

    display = client.get(f"{UI}/display/cr_campaign").text
    assert schedule_cell(display, stopped) == ("60", "182 of 300 sent")
    polled = {run["run_id"]: run for run in client.get(f"{UI}/display/cr_campaign/status.json").json()["runs"]}
    assert polled[stopped]["messages"]["text"] == "182 of 300 sent"
