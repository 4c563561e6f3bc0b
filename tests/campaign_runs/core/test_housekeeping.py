"""Housekeeping (core.housekeeping): a stop finishes once no task runs, with one email; overdue ones are killed."""

from __future__ import annotations

import pytest
from campaign_runs import core
from campaign_runs.domain import ActionNotAllowedError
from campaign_runs.tables import run_action

from tests.campaign_runs.core.helpers import count, dag_run, ti_states
from tests.support.fixtures import body_of

BASE = "http://airflow.example.com/dags"  # links open the campaign inside Airflow's UI


def set_ti_state(dag_id: str, run_id: str, task_id: str, state: str) -> None:
    """Set one task instance's state, as its process would on ending."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
            .values(state=state)
        )


def test_stop_reads_stopping_until_tasks_end_then_stopped_with_one_email(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    result = core.stop_run("cr_campaign", run_id, actor="alice", note="Wrong audience")
    assert (result.status_before, result.status_after) == ("running", "stopping")
    assert core.get_run("cr_campaign", run_id).status == "stopping"
    assert dag_run("cr_campaign", run_id).state == "failed"
    assert ti_states("cr_campaign", run_id) == {
        "build_audience": "success",
        "send_email": "running",
        "send_sms": "skipped",
        "summarise": "skipped",
    }
    # Still running: no email, nothing on the work list.
    assert core.finish_stopping_runs() == []
    assert core.worklist("alice") == []

    set_ti_state("cr_campaign", run_id, "send_email", "failed")  # the task process ended
    outbox_ids, sent = core.housekeeping_pass()
    assert (len(outbox_ids), sent) == (1, 1)
    assert core.get_run("cr_campaign", run_id).status == "stopped"

    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
    assert message["To"] == "alice@example.com"
    body = body_of(message)
    assert f"Work id: <code>{run_id}</code>" in body
    assert f'href="{BASE}/cr_campaign/plugin/campaign"' in body
    assert "Wrong audience" in body

    [entry] = core.worklist("alice")
    assert (entry.dag_id, entry.run_id, entry.reason, entry.note) == (
        "cr_campaign",
        run_id,
        "stopped",
        "Wrong audience",
    )
    assert dag_run("cr_campaign", run_id).note == "Wrong audience"

    # A second stop changes nothing and sends nothing.
    with pytest.raises(ActionNotAllowedError, match="allowed when the run is queued, running"):
        core.stop_run("cr_campaign", run_id, actor="alice", note="again")
    assert core.housekeeping_pass() == ([], 0)
    assert len(smtp_server.messages) == 1
    assert count(run_action) == 1


def test_stop_of_a_queued_run_finishes_at_the_next_pass(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="queued")
    core.stop_run("cr_campaign", run_id, actor="bob", note="too early")
    assert core.get_run("cr_campaign", run_id).status == "stopped"
    core.housekeeping_pass()
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "bob@example.com"


def test_overdue_stopping_run_is_killed_by_airflows_mark_failed(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__STOP_GRACE_SECONDS", "0")
    from campaign_runs.settings import get_settings

    get_settings.cache_clear()
    run_id = make_run("cr_campaign", state="running", ti_states={"send_email": "running"})
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()  # grace over: Airflow fails the running task
    assert ti_states("cr_campaign", run_id)["send_email"] == "failed"
    core.finish_stopping_runs()
    assert core.get_run("cr_campaign", run_id).status == "stopped"
