"""Runs someone acted on in Airflow itself (core.reconcile): cleared, marked or deleted after the plugin's action."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.domain import ActionNotAllowedError

from tests.campaign_runs.core.helpers import dag_run
from tests.support.fixtures import body_of


def clear_in_airflow(dag_id: str, run_id: str) -> None:
    """What Airflow's "Clear" on a DAG run does: Airflow's own ``clear_task_instances``, run back to queued."""
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        clear_task_instances(tis, session, dag_run_state=DagRunState.QUEUED)


def set_run_state_in_airflow(dag_id: str, run_id: str, state: str) -> None:
    """What Airflow's scheduler (or "Mark as ...") does to the DagRun's state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one().state = state


def delete_in_airflow(dag_id: str, run_id: str) -> None:
    """What Airflow's "Delete" of a DAG run (and ``airflow db clean``) does: the row is gone."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.delete(session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one())


def stopped_run(make_run: Any, **kwargs: Any) -> str:
    """A run stopped through the plugin and finished by the housekeeper: on alice's work list."""
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"}, **kwargs)
    core.stop_run("cr_campaign", run_id, actor="alice", note="Wrong audience")
    core.housekeeping_pass()
    assert core.get_run("cr_campaign", run_id).status == "stopped"
    return run_id


def test_a_stopped_run_cleared_in_airflow_follows_airflow_and_can_be_stopped_again(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = stopped_run(make_run)
    smtp_server.wait_for(1)

    clear_in_airflow("cr_campaign", run_id)
    # Reads show Airflow's live state at once, before any housekeeping pass.
    view = core.get_run("cr_campaign", run_id)
    assert (view.status, view.allowed_actions) == ("queued", ["stop"])
    queued = core.run_schedule("cr_campaign", statuses=["queued"], upcoming=0)
    assert run_id in [r.run_id for r in queued.runs]
    assert run_id not in [r.run_id for r in core.run_schedule("cr_campaign", statuses=["stopped"], upcoming=0).runs]

    core.housekeeping_pass()
    last = core.run_history("cr_campaign", run_id)[-1]
    assert (last.action, last.actor, last.status_before, last.status_after) == (
        "rerun_in_airflow",
        "airflow",
        "stopped",
        "queued",
    )
    [entry] = core.worklist("alice", include_resolved=True)
    assert (entry.run_id, entry.resolution) == (run_id, "rerun_in_airflow") and entry.resolved_at is not None
    assert core.worklist("alice") == []

    set_run_state_in_airflow("cr_campaign", run_id, "running")
    assert core.get_run("cr_campaign", run_id).status == "running"
    again = core.stop_run("cr_campaign", run_id, actor="bob", note="Still wrong")
    assert (again.status_before, again.status_after) == ("running", "stopping")
    core.housekeeping_pass()
    assert core.get_run("cr_campaign", run_id).status == "stopped"
    assert [e.assignee for e in core.worklist(None)] == ["bob"]
    assert [h.action for h in core.run_history("cr_campaign", run_id)] == ["stop", "rerun_in_airflow", "stop"]


def test_a_cleared_run_that_fails_again_reads_failed_not_stopped(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = stopped_run(make_run)
    clear_in_airflow("cr_campaign", run_id)
    set_run_state_in_airflow("cr_campaign", run_id, "failed")  # the re-run failed before any housekeeping
    view = core.get_run("cr_campaign", run_id)
    assert (view.status, view.allowed_actions) == ("failed", ["restart", "skip"])
    core.housekeeping_pass()
    assert core.get_run("cr_campaign", run_id).status == "failed"
    assert core.run_history("cr_campaign", run_id)[-1].action == "rerun_in_airflow"


def test_a_skipped_run_marked_success_in_airflow_reads_completed(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    core.skip_run("cr_campaign", run_id, actor="alice", note="Not needed")
    assert core.get_run("cr_campaign", run_id).status == "skipped"
    set_run_state_in_airflow("cr_campaign", run_id, "success")
    assert core.get_run("cr_campaign", run_id).status == "completed"
    assert run_id in [r.run_id for r in core.run_schedule("cr_campaign", upcoming=0).runs]  # no longer hidden


def test_a_run_deleted_in_airflow_leaves_the_work_list_and_its_run_id_starts_clean(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = stopped_run(make_run)
    smtp_server.wait_for(1)
    delete_in_airflow("cr_campaign", run_id)
    core.housekeeping_pass()
    [entry] = core.worklist("alice", include_resolved=True)
    assert (entry.run_id, entry.resolution) == (run_id, "deleted")

    reused = make_run("cr_campaign", state="failed", run_id=run_id)
    view = core.get_run("cr_campaign", reused)
    assert (view.status, view.restart_of, view.replaced_by) == ("failed", None, None)
    assert core.run_history("cr_campaign", reused) == []
    assert len(smtp_server.messages) == 1  # nothing more was sent about the deleted run


def test_a_run_id_reused_before_housekeeping_does_not_inherit_the_old_status(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = stopped_run(make_run)
    delete_in_airflow("cr_campaign", run_id)
    reused = make_run("cr_campaign", state="running", run_id=run_id, ti_states={"build_audience": "success"})
    assert core.get_run("cr_campaign", reused).status == "running"
    result = core.stop_run("cr_campaign", reused, actor="bob", note="New run, new stop")
    assert (result.status_before, result.status_after) == ("running", "stopping")
    assert [h.action for h in core.run_history("cr_campaign", reused)] == ["stop"]
    [old] = core.worklist("alice", include_resolved=True)
    assert old.resolution == "deleted"


def test_a_run_deleted_while_stopping_still_emails_whoever_stopped_it(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    core.stop_run("cr_campaign", run_id, actor="alice", note="Wrong audience")
    delete_in_airflow("cr_campaign", run_id)
    outbox_ids, _ = core.housekeeping_pass()
    assert len(outbox_ids) == 1
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign was deleted in Airflow while stopping"
    assert message["To"] == "alice@example.com"
    assert "Wrong audience" in body_of(message) and "not on your work list" in body_of(message)
    assert core.worklist("alice", include_resolved=True) == []
    core.housekeeping_pass()
    assert len(smtp_server.messages) == 1  # once


def test_stop_is_still_refused_while_the_plugin_status_holds(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = stopped_run(make_run)
    assert dag_run("cr_campaign", run_id).state == "failed"
    with pytest.raises(ActionNotAllowedError):
        core.stop_run("cr_campaign", run_id, actor="alice", note="Again")
