"""What the run schedule and the run page show of a run's progress: messages, not tasks, and all of it live.

Through a real login (FAB auth manager) on the real metadata DB, in-process, as ``test_views.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, push_progress, users  # noqa: F401  (fixture)

# Every task of the test campaign has ended: task progress reads 100 %, whatever was sent.
ALL_DONE = {"build_audience": "success", "send_email": "failed", "send_sms": "success", "summarise": "upstream_failed"}


def schedule_cell(html: str, run_id: str) -> tuple[str, str]:
    """The percent and the words of a run's Messages cell in the run schedule."""
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', html, re.S)
    assert row, f"no row for {run_id}"
    cell = re.search(r'<td class="cr-bar cr-messages">(.*?)</td>', row.group(0), re.S)
    assert cell, row.group(0)
    percent = re.search(r'<span class="cr-percent">(\d+)%</span>', cell.group(1))
    words = re.search(r'<span class="cr-messages-text[^"]*">(.*?)</span>', cell.group(1), re.S)
    assert percent and words, cell.group(1)
    return percent.group(1), unescape(words.group(1)).strip()


def test_the_run_schedule_shows_message_progress_not_task_progress(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    stopped = make_run("cr_campaign", state="failed", ti_states=ALL_DONE)
    push_progress("cr_campaign", stopped, "send_email", {"channel": "email", "total": 200, "sent": 120, "failed": 2})
    push_progress(
        "cr_campaign", stopped, "send_sms", {"channel": "sms", "total": 100, "sent": 62, "failed": 0, "in_doubt": 1}
    )
    silent = make_run("cr_campaign", state="failed", ti_states=ALL_DONE)  # ended before any channel reported
    client = users("viewer")

    page = client.get(f"{BASE}/display/cr_campaign")
    assert page.status_code == 200, page.text[:500]
    assert ">Messages</abbr></th>" in page.text
    assert schedule_cell(page.text, stopped) == ("61", "182 of 300 sent, 2 failed, 1 in doubt")  # 184 of 300 handled
    assert schedule_cell(page.text, silent) == ("0", "not reported")

    polled = {run["run_id"]: run for run in client.get(f"{BASE}/display/cr_campaign/status.json").json()["runs"]}
    assert polled[stopped]["progress_percent"] == 100  # the tasks: all ended
    assert polled[stopped]["messages"] == {
        "total": 300,
        "sent": 182,
        "failed": 2,
        "in_doubt": 1,
        "percent": 61,
        "text": "182 of 300 sent, 2 failed, 1 in doubt",
    }
    assert polled[silent]["messages"]["total"] is None
    assert polled[silent]["messages"]["text"] == "not reported"

    # The run page says the same of the same run.
    details = client.get(f"{BASE}/display/cr_campaign/run/{stopped}").text
    overall = re.search(r'id="cr-overall">.*?<span class="cr-percent">(\d+)%', details, re.S)
    assert overall and overall.group(1) == "61"


def test_a_run_without_recipients_says_so(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    empty = make_run("cr_campaign", state="success", ti_states=dict.fromkeys(ALL_DONE, "success"))
    push_progress("cr_campaign", empty, "send_email", {"channel": "email", "total": 0, "sent": 0, "failed": 0})
    page: Any = users("viewer").get(f"{BASE}/display/cr_campaign")
    assert schedule_cell(page.text, empty) == ("0", "no recipients")


# ------------------------------------------------------------------ the run page, live

LIVE = ("cr-run-status", "cr-run", "cr-channels", "cr-tasks-table", "cr-history", "cr-emails")


def set_task_states(dag_id: str, run_id: str, states: dict[str, str]) -> None:
    """Move the run's task instances on, as the scheduler and its workers would."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id):
            if ti.task_id in states:
                ti.state = states[ti.task_id]
                ti.try_number = max(ti.try_number, 1)


def live_parts(html: str) -> dict[str, str]:
    """What a poll's rendering says in each part the run page refreshes, tags removed."""
    found = {}
    for part in LIVE:
        match = re.search(rf'<(\w+)[^>]* id="{part}"[^>]*>(.*?)</\1>', html, re.S)
        assert match, part
        found[part] = " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(2))).split())
    return found


def task_cells(html: str) -> dict[str, tuple[str, str]]:
    """Each task row's state badge and try, from a rendering of the run page."""
    table = re.search(r'<table id="cr-tasks-table">(.*?)</table>', html, re.S)
    assert table
    rows = re.findall(
        r'<tr data-task-id="(\w+)">.*?data-status="([a-z_]+)".*?</td>\s*<td>([^<]*)</td>', table.group(1), re.S
    )
    return {task: (state, tried.strip()) for task, state, tried in rows}


def test_a_poll_of_the_run_page_carries_everything_it_shows(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("alice")
    page = client.get(f"{BASE}/display/cr_campaign/run/{run_id}")
    assert "0 of 4 done" in live_parts(page.text)["cr-run"]
    assert "Messages" not in live_parts(page.text)["cr-run"]
    assert set(task_cells(page.text).values()) == {("none", "0")}
    status = f"{BASE}/display/cr_campaign/run/{run_id}/status.json"

    # The run goes on: a task done, one sending, its channel reporting; the page is not reloaded.
    set_task_states("cr_campaign", run_id, {"build_audience": "success", "send_email": "running"})
    push_progress("cr_campaign", run_id, "send_email", {"channel": "email", "total": 40, "sent": 10, "failed": 2})
    polled = client.get(status)
    assert polled.status_code == 200
    data = polled.json()
    assert (data["status"], data["tasks_done"], data["overall_percent"]) == ("running", 1, 30)
    parts = live_parts(data["html"])
    assert "1 of 4 done" in parts["cr-run"]
    assert "Messages 30%" in parts["cr-run"]  # the bar the page had none of
    assert task_cells(data["html"]) == {
        "build_audience": ("success", "1"),
        "send_email": ("running", "1"),
        "send_sms": ("none", "0"),
        "summarise": ("none", "0"),
    }
    assert parts["cr-channels"].startswith("Channel") and "email" in parts["cr-channels"]
    assert re.search(r'<tr data-channel="email">.*?class="cr-sent">10<', data["html"], re.S)

    # A Stop: its message waits for the page it leads to, whatever polls come in between.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    stopped = client.post(
        f"{BASE}/display/cr_campaign/run/{run_id}/stop", data={"note": "Wrong list", "csrf_token": token.group(1)}
    )
    assert stopped.status_code == 303
    between = client.get(status).json()
    assert 'class="cr-flash' not in between["html"]
    assert "Wrong list" in live_parts(between["html"])["cr-history"]
    assert f"Run {run_id} is stopping" in client.get(stopped.headers["location"]).text
