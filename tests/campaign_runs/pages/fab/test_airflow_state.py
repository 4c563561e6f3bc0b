"""The run page says why Airflow's own pages show a run the plugin stopped or skipped as Failed (issue 25, 11).

Airflow has no stopped or skipped state for a DAG run: Stop marks the run failed in Airflow, and the plugin
reads it as stopping, stopped or skipped. The run page (also the DAG run's Campaign run tab, beside Airflow's
Failed badge) says so, in words; a run both read alike gets no such sentence. What Airflow shows is read from
Airflow's own REST API, as its pages read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import (
    badge,
    post_action,
    record_status,
    run_url,
    stopped_run,
    users,
)

__all__ = ["users"]  # the fixture logging test users in


def airflow_state(client: TestClient, run_id: str) -> str:
    """The run's state as Airflow's own REST API (and so its UI) gives it."""
    answer = client.get(f"/api/v2/dags/cr_campaign/dagRuns/{run_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["state"])


def why(response: Any) -> str | None:
    """The run page's sentence on Airflow's own state, None when there is none."""
    found = re.search(r'<p class="cr-muted" id="cr-airflow-state"[^>]*>(.*?)</p>', response.text, re.S)
    return None if found is None else " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def test_a_stopping_then_stopped_run_says_airflow_records_it_as_failed(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    alice = users("alice")
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "running"})
    assert post_action(alice, "cr_campaign", run_id, "stop", "halt").status_code == 303

    stopping = alice.get(run_url("cr_campaign", run_id))

    assert record_status("cr_campaign", run_id) == "stopping" and badge(stopping) == "stopping"
    assert airflow_state(alice, run_id) == "failed"
    assert why(stopping) == (
        "Airflow's own pages show this run as Failed: Airflow has no stopped state, and records a stopped run as "
        "failed. Campaign Runs shows it as stopping because it was stopped with Stop and a task of it is still "
        "ending."
    )
    status = alice.get(f"{run_url('cr_campaign', run_id)}/status.json").json()
    assert 'id="cr-airflow-state"' in status["html"]  # the live page keeps saying it


def test_a_stopped_and_a_skipped_run_say_why_airflow_shows_failed(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    alice = users("alice")
    run_id = stopped_run(make_run, alice)

    stopped = alice.get(run_url("cr_campaign", run_id))

    assert badge(stopped) == "stopped" and airflow_state(alice, run_id) == "failed"
    assert "Campaign Runs shows it as stopped because it was stopped with Stop." in (why(stopped) or "")
    assert post_action(alice, "cr_campaign", run_id, "skip", "not this week").status_code == 303
    skipped = alice.get(run_url("cr_campaign", run_id))
    assert badge(skipped) == "skipped" and airflow_state(alice, run_id) == "failed"
    assert why(skipped) == (
        "Airflow's own pages show this run as Failed: Airflow has no skipped state for a run, and records a run "
        "skipped or restarted here as failed. Campaign Runs shows it as skipped because it was skipped with Skip."
    )


def test_runs_airflow_and_the_plugin_read_alike_get_no_such_sentence(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    viewer = users("viewer")
    for state, status in (("failed", "failed"), ("success", "completed"), ("running", "running")):
        run_id = make_run("cr_campaign", state=state)
        page = viewer.get(run_url("cr_campaign", run_id))
        assert badge(page) == status and airflow_state(viewer, run_id) == state
        assert why(page) is None and 'id="cr-airflow-state"' not in page.text
