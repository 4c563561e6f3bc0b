"""The Monitor tab in headless Chromium on a real api-server: chart numbers read from Chart.js, tooltip, click, CSV.

The campaign ``cr_campaign`` (email and SMS) gets a completed run, a stopped run, a stopped run restarted
(it reads skipped, its replacement is queued) and a skipped run, all made by the plugin's own actions.
The charts' numbers are read from the Chart.js instances in the page (``Chart.getChart(canvas).data``),
not from pixels. The test also takes the README's pictures of the Monitor tab and the campaigns page:
into ``docs/screenshots`` with ``CAMPAIGN_RUNS_SCREENSHOTS=1``, else into the test's temporary folder.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from campaign_runs import core
from campaign_runs.tables import email_outbox, run_action, run_record, worklist_entry
from sqlalchemy import delete

from tests.browser.support import PLUGIN, REPO, chromium, login, stack_env
from tests.campaign_runs.core.test_restart_options import report_progress
from tests.support.airflow_env import free_port
from tests.support.fixtures import PASSWORD, TEST_DAGS, SmtpSink, sync_test_dags
from tests.support.processes import airflow_stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAG = "cr_campaign"
USER = "alice"
NUMBERS = ("sent", "failed", "in_doubt", "total", "stops", "restarts", "skips")
MINUTES = {"completed": 24, "stopped": 7, "restarted": 3, "skipped": 12}  # how long each finished run took


def clean_campaign() -> None:
    """The test campaigns active, no run of this one and no plugin row about it (the session shares the DB)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    sync_test_dags()  # a dag-processor of another test, on another DAGs folder, may have marked them stale
    with create_session() as session:
        for table in (email_outbox, worklist_entry, run_action, run_record):
            session.execute(delete(table).where(table.c.dag_id == DAG))
        for dag_run in session.query(DagRun).filter(DagRun.dag_id == DAG):
            session.delete(dag_run)
        session.query(DagModel).filter(DagModel.dag_id == DAG).update({"is_paused": False})


@pytest.fixture
def runs(make_run: Any, smtp_server: SmtpSink) -> dict[str, str]:
    """Completed, stopped, stopped-then-restarted (and its queued replacement) and skipped runs."""
    clean_campaign()
    completed = make_run(DAG, state="success")
    report_progress(DAG, completed, "email", {"total": 100, "sent": 90, "failed": 10, "in_doubt": 0})
    report_progress(DAG, completed, "sms", {"total": 50, "sent": 50, "failed": 0, "in_doubt": 0})
    stopped = make_run(DAG, state="running")
    report_progress(DAG, stopped, "email", {"total": 100, "sent": 40, "failed": 2, "in_doubt": 3})
    core.stop_run(DAG, stopped, actor=USER, note="Wrong audience")
    restarted = make_run(DAG, state="running")
    report_progress(DAG, restarted, "email", {"total": 100, "sent": 30, "failed": 0, "in_doubt": 0})
    core.stop_run(DAG, restarted, actor=USER, note="Template typo")
    core.finish_stopping_runs()
    replacement = core.restart_run(DAG, restarted, actor=USER, note="Typo fixed").new_run_id
    skipped = make_run(DAG, state="failed")
    report_progress(DAG, skipped, "sms", {"total": 20, "sent": 5, "failed": 15, "in_doubt": 0})
    core.skip_run(DAG, skipped, actor="bob", note="Not needed today")
    assert replacement is not None
    made = {"completed": completed, "stopped": stopped, "restarted": restarted, "skipped": skipped}
    took(made)
    return {**made, "replacement": replacement}


def took(made: dict[str, str]) -> None:
    """Give each finished run its ``MINUTES``, ending an hour apart (real runs take minutes, not milliseconds)."""
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    now = pendulum.now("UTC")
    with create_session() as session:
        for hours, (name, run_id) in enumerate(made.items(), start=1):
            end = now.subtract(hours=len(made) - hours)
            session.query(DagRun).filter(DagRun.dag_id == DAG, DagRun.run_id == run_id).update(
                {"start_date": end.subtract(minutes=MINUTES[name]), "end_date": end}
            )


@pytest.fixture
def base_url(tmp_path: Path, smtp_server: SmtpSink, airflow_db: None) -> Iterator[str]:
    """A real api-server (Airflow's UI, FAB's ``/pluginsv2``) on the session's metadata DB."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with airflow_stack(stack_env(url, smtp_server.port, tmp_path, TEST_DAGS), tmp_path / "logs") as processes:
        processes.start("api-server", port=port)
        processes.wait_healthy(timeout=180)
        yield url


@pytest.fixture
def page(base_url: str) -> Iterator[Any]:
    """Alice, logged in through Airflow's login page, in Debian's Chromium."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.set_default_timeout(30_000)
        login(page, base_url, USER, PASSWORD)
        yield page


def screenshots(tmp_path: Path) -> Path:
    """Where the pictures go: the README's folder when asked for, else the test's own."""
    return REPO / "docs" / "screenshots" if os.environ.get("CAMPAIGN_RUNS_SCREENSHOTS") == "1" else tmp_path


CHART_DATA = """
(id) => {
  const chart = Chart.getChart(document.getElementById(id));
  return {labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data}))};
}
"""

TABLE = """
() => Array.from(document.querySelectorAll('#cr-monitor-table tr.cr-row')).map((row) => {
  const cells = {run_id: row.dataset.runId, channel: row.dataset.channel};
  row.querySelectorAll('td[data-col]').forEach((td) => { cells[td.dataset.col] = td.textContent.trim(); });
  return cells;
})
"""

BAR_CENTRE = """
([id, dataset, index]) => {
  const chart = Chart.getChart(document.getElementById(id));
  const bar = chart.getDatasetMeta(dataset).data[index];
  const box = chart.canvas.getBoundingClientRect();
  return {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2};
}
"""

TOOLTIP = """
(id) => {
  const tooltip = Chart.getChart(document.getElementById(id)).tooltip;
  if (!tooltip || !tooltip.opacity || !tooltip.getActiveElements().length) { return null; }
  return {title: tooltip.title, lines: tooltip.body.map((b) => b.lines.join(' '))};
}
"""


def test_monitor_charts_tooltip_click_and_csv(page: Any, base_url: str, runs: dict[str, str], tmp_path: Path) -> None:
    """The charts draw the runs' numbers, a hover shows them, a click opens the run, the CSV is the table."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}{PLUGIN}/monitor/{DAG}?limit=30")
    page.wait_for_function(
        "() => window.crMonitorCharts && Chart.getChart(document.getElementById('cr-chart-messages'))"
    )
    expect(page.locator("h1")).to_have_text(f"Monitor {DAG}")

    # Messages per run, stacked by channel, with failures: read from the chart's own data.
    messages = page.evaluate(CHART_DATA, "cr-chart-messages")
    labels: list[str] = messages["labels"]
    assert sorted(labels) == sorted(runs.values())
    series = {d["label"]: dict(zip(labels, d["data"], strict=True)) for d in messages["datasets"]}
    assert set(series) == {"email sent", "sms sent", "failed"}
    expected = {  # run: (email sent, sms sent, failed)
        "completed": (90, 50, 10),
        "stopped": (40, 0, 2),
        "restarted": (30, 0, 0),
        "replacement": (0, 0, 0),
        "skipped": (0, 5, 15),
    }
    drawn = {name: tuple(series[s][runs[name]] for s in ("email sent", "sms sent", "failed")) for name in runs}
    assert drawn == expected

    # The table says the same, run by run, and shows the interventions.
    table = page.evaluate(TABLE)
    for name, run_id in runs.items():
        cells = {row["channel"]: row for row in table if row["run_id"] == run_id}
        email_sent, sms_sent, failed = expected[name]
        assert (int(cells["email"]["sent"]), int(cells["sms"]["sent"])) == (email_sent, sms_sent), name
        assert int(cells["email"]["failed"]) + int(cells["sms"]["failed"]) == failed, name
    by_run = {row["run_id"]: row for row in table}
    assert (by_run[runs["stopped"]]["stops"], by_run[runs["stopped"]]["restarts"]) == ("1", "0")
    assert (by_run[runs["restarted"]]["stops"], by_run[runs["restarted"]]["restarts"]) == ("1", "1")
    assert by_run[runs["skipped"]]["skips"] == "1"
    duration = page.evaluate(CHART_DATA, "cr-chart-duration")
    seconds = dict(zip(duration["labels"], duration["datasets"][0]["data"], strict=True))
    assert {name: seconds[runs[name]] for name in MINUTES} == {name: m * 60 for name, m in MINUTES.items()}
    assert seconds[runs["replacement"]] is None  # queued: no duration yet
    interventions = page.evaluate(CHART_DATA, "cr-chart-interventions")
    totals = {d["label"]: sum(d["data"]) for d in interventions["datasets"]}
    assert totals == {"stop": 2, "restart": 1, "skip": 1, "reassign": 0}
    page.wait_for_timeout(1500)  # the picture only: Chart.js's opening animation (1 s) has ended
    page.screenshot(path=str(screenshots(tmp_path) / "monitor.png"), full_page=True)

    # Hovering the completed run's email bar shows its values.
    index = labels.index(runs["completed"])
    centre = page.evaluate(BAR_CENTRE, ["cr-chart-messages", 0, index])
    page.mouse.move(centre["x"], centre["y"])
    page.wait_for_function(f"() => ({TOOLTIP})('cr-chart-messages') !== null")
    tooltip = page.evaluate(TOOLTIP, "cr-chart-messages")
    assert tooltip["title"] == [runs["completed"]]
    assert tooltip["lines"] == ["email sent: 90", "sms sent: 50", "failed: 10"]

    # The CSV export is the table, row for row.
    href = page.locator("#cr-monitor-csv").get_attribute("href")
    response = page.request.get(f"{base_url}{href}")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(response.text())))
    assert [(row["run_id"], row["channel"]) for row in exported] == [(row["run_id"], row["channel"]) for row in table]
    for row, shown in zip(exported, table, strict=True):
        assert [row[col] for col in NUMBERS] == [shown[col] for col in NUMBERS], row["run_id"]

    # Clicking the bar opens the run's details.
    page.mouse.click(centre["x"], centre["y"])
    page.wait_for_url(f"**/display/{DAG}/run/{quote(runs['completed'], safe='')}")
    expect(page.get_by_text(runs["completed"]).first).to_be_visible()

    page.goto(f"{base_url}{PLUGIN}/list")
    expect(page.get_by_text(DAG).first).to_be_visible()
    page.screenshot(path=str(screenshots(tmp_path) / "overview.png"), full_page=True)
