"""The run schedule (core.schedule): upcoming slots, past runs by page and status, one run."""

from __future__ import annotations

import pendulum
from campaign_runs import core


def test_upcoming_runs_follow_the_cron_in_its_timezone(airflow_db) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:  # a stale next run, as left when no scheduler ran for weeks
        stale = pendulum.datetime(2026, 1, 5, 8, tz="UTC")
        session.execute(
            update(DagModel)
            .where(DagModel.dag_id == "cr_campaign")
            .values(next_dagrun=stale, next_dagrun_create_after=stale)
        )
    upcoming = core.upcoming_runs("cr_campaign", 3)
    assert len(upcoming) == 3
    assert all(slot.run_after > pendulum.now("UTC") for slot in upcoming)
    for slot in upcoming:
        local = pendulum.instance(slot.run_after).in_timezone("Europe/Paris")
        assert (local.day_of_week, local.hour, local.minute) == (pendulum.MONDAY, 9, 0)
        assert slot.status == "scheduled"
    first, second = (pendulum.instance(s.run_after).in_timezone("Europe/Paris") for s in upcoming[:2])
    assert second.naive() - first.naive() == pendulum.duration(weeks=1)  # a week of wall-clock time, DST or not


def test_run_schedule_pages_newest_first_and_hides_skipped(make_run) -> None:  # type: ignore[no-untyped-def]
    run_ids = [make_run("cr_campaign", state="failed") for _ in range(5)]
    first = core.run_schedule("cr_campaign", page=1, page_size=2, upcoming=2)
    assert [r.run_id for r in first.runs] == run_ids[::-1][:2]
    assert (first.total, first.pages, len(first.upcoming)) == (5, 3, 2)
    last = core.run_schedule("cr_campaign", page=3, page_size=2)
    assert [r.run_id for r in last.runs] == [run_ids[0]]
    assert last.upcoming == []

    core.skip_run("cr_campaign", run_ids[4], actor="alice", note="not needed")
    hidden = core.run_schedule("cr_campaign", page_size=10)
    assert run_ids[4] not in [r.run_id for r in hidden.runs]
    shown = core.run_schedule("cr_campaign", page_size=10, include_skipped=True)
    assert {r.run_id: r.status for r in shown.runs}[run_ids[4]] == "skipped"
    failed_only = core.run_schedule("cr_campaign", page_size=10, statuses=["failed"])
    assert [r.run_id for r in failed_only.runs] == run_ids[:4][::-1]


def test_status_follows_airflow_states_and_progress(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    view = core.get_run("cr_campaign", run_id)
    assert (view.status, view.tasks_done, view.tasks_total, view.progress_percent) == ("running", 1, 4, 25)
    assert view.allowed_actions == ["stop"]
    assert core.get_run("cr_campaign", make_run(state="success")).status == "completed"
    assert core.get_run("cr_campaign", make_run(state="queued")).status == "queued"
    failed = core.get_run("cr_campaign", make_run(state="failed"))
    assert (failed.status, failed.allowed_actions) == ("failed", ["restart", "skip"])
