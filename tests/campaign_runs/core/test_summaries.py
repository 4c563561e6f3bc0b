"""Run summaries (core.summaries): written when a run ends or its stop finishes, backfilled, read by the Monitor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from campaign_runs import core, listeners
from campaign_runs.core import monitor, summaries
from campaign_runs.core.overview import overview
from campaign_runs.domain import utcnow
from campaign_runs.tables import run_summary
from sqlalchemy import delete, select, update

from tests.campaign_runs.core.test_restart_options import report_progress
from tests.campaign_runs.pages.fab.test_queries import counted

DAG = "cr_campaign"


@pytest.fixture(autouse=True)
def no_pending() -> Iterator[None]:
    """Runs another test marked as ended do not leak into this one."""
    summaries._take_pending()
    yield
    summaries._take_pending()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, dict[str, str] | None]]:
    """Counters sent through the metrics adapter: ``(name, count, tags)``."""
    seen: list[tuple[str, int, dict[str, str] | None]] = []
    monkeypatch.setattr(summaries.metrics, "incr", lambda name, count=1, tags=None: seen.append((name, count, tags)))
    return seen


def rows(dag_id: str = DAG, run_id: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Summary rows by (run_id, channel)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        query = select(run_summary).where(run_summary.c.dag_id == dag_id)
        if run_id is not None:
            query = query.where(run_summary.c.run_id == run_id)
        return {(r.run_id, r.channel): dict(r._mapping) for r in session.execute(query)}


def drop_xcom(run_id: str) -> None:
    """Remove the run's progress from XCom: what is left to read is the summary."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(delete(XComModel).where(XComModel.dag_id == DAG, XComModel.run_id == run_id))


def move_end(run_id: str, end: Any) -> None:
    """Set the DagRun's end date (as a clear and a new end would)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.dag_id == DAG, DagRun.run_id == run_id).values(end_date=end))


def test_a_run_the_listener_saw_end_is_summarised_per_channel(make_run: Any, sent: list[Any]) -> None:
    run_id = make_run(DAG, state="success")
    report_progress(DAG, run_id, "email", {"total": 100, "sent": 90, "failed": 10, "in_doubt": 0})
    summaries.mark_ended(DAG, run_id)
    assert summaries.finalise_ended(backfill=False) == 1
    found = rows(run_id=run_id)
    assert set(found) == {(run_id, "email"), (run_id, "sms")}  # every declared channel, reported or not
    email = found[run_id, "email"]
    assert (email["total"], email["sent"], email["failed"], email["in_doubt"]) == (100, 90, 10, 0)
    assert (email["status"], email["finalised"]) == ("completed", True)
    assert email["ended_at"] is not None and email["duration_seconds"] is not None
    assert found[run_id, "sms"]["sent"] == 0
    assert sorted(sent, key=str) == sorted(
        [
            ("messages.sent", 90, {"dag_id": DAG, "channel": "email"}),
            ("messages.sent.cr_campaign.email", 90, None),
            ("messages.failed", 10, {"dag_id": DAG, "channel": "email"}),
            ("messages.failed.cr_campaign.email", 10, None),
        ],
        key=str,
    )
    # Summarised again for the same end: nothing new to count.
    summaries.mark_ended(DAG, run_id)
    sent.clear()
    assert summaries.finalise_ended(backfill=False) == 1
    assert sent == []


def test_a_summary_row_keeps_what_each_channel_held_back(make_run: Any) -> None:
    run_id = make_run(DAG, state="success")
    skipped = {"no_consent": 40, "invalid_address": 7}
    report_progress(DAG, run_id, "email", {"total": 100, "sent": 98, "failed": 2, "suppressed": 3, "skipped": skipped})
    report_progress(DAG, run_id, "sms", {"total": 5, "sent": 5, "failed": 0})  # an older task: neither key
    summaries.finalise_ended(backfill=True)
    found = rows(run_id=run_id)
    email, sms = found[run_id, "email"], found[run_id, "sms"]
    assert (email["suppressed"], email["skipped"]) == (3, '{"invalid_address": 7, "no_consent": 40}')
    assert (sms["suppressed"], sms["skipped"]) == (0, None)
    drop_xcom(run_id)  # what the Monitor reads now is the summary
    (run,) = [r for r in monitor.campaign_metrics(DAG, limit=10).runs if r.run_id == run_id]
    by_channel = {c.channel: c for c in run.channels}
    assert (by_channel["email"].suppressed, by_channel["email"].skipped) == (3, skipped)
    assert (by_channel["sms"].suppressed, by_channel["sms"].skipped) == (0, {})
    from airflow.utils.session import create_session

    with create_session() as session:
        kept = summaries.stored(DAG, [run_id], session)[run_id]
    assert kept.channels["email"] == (98, 2, 0, 100, 3, {"invalid_address": 7, "no_consent": 40})


def test_the_monitor_reads_finished_runs_from_their_summary(make_run: Any) -> None:
    done = make_run(DAG, state="success")
    report_progress(DAG, done, "email", {"total": 10, "sent": 7, "failed": 3})
    going = make_run(DAG, state="running")
    report_progress(DAG, going, "email", {"total": 10, "sent": 4, "failed": 0})
    assert summaries.finalise_ended(backfill=True) == 1  # the running one is not summarised
    drop_xcom(done)
    by_run = {r.run_id: r for r in monitor.campaign_metrics(DAG, limit=10).runs}
    assert (by_run[done].sent, by_run[done].failed) == (7, 3)  # from the summary: XCom is gone
    assert by_run[going].sent == 4  # live from XCom


def test_a_summary_of_an_earlier_end_is_not_used_and_is_redone(make_run: Any) -> None:
    run_id = make_run(DAG, state="success")
    report_progress(DAG, run_id, "email", {"total": 10, "sent": 5, "failed": 0})
    summaries.finalise_ended(backfill=True)
    report_progress(DAG, run_id, "email", {"total": 10, "sent": 9, "failed": 1})
    move_end(run_id, utcnow() + timedelta(seconds=1))  # cleared and ended again, the listener missed it
    assert monitor.campaign_metrics(DAG, limit=10).runs[0].sent == 9  # stale summary: read live
    assert summaries.finalise_ended(backfill=True) == 1
    assert rows(run_id=run_id)[run_id, "email"]["sent"] == 9
    assert summaries.finalise_ended(backfill=True) == 0  # nothing left


def test_backfill_skips_active_stopping_and_non_campaign_runs(make_run: Any) -> None:
    ended = [make_run(DAG, state=state) for state in ("success", "failed")]
    make_run(DAG, state="running")
    make_run(DAG, state="queued")
    make_run("cr_plain", state="success")
    stopping = make_run(DAG, state="running")
    core.stop_run(DAG, stopping, actor="alice", note="Wrong list")  # halted: failed, but still stopping
    assert summaries.finalise_ended(backfill=True) == 2
    assert {run_id for run_id, _ in rows()} == set(ended)
    assert {r["status"] for r in rows().values()} == {"completed", "failed"}
    assert rows("cr_plain") == {}


def test_finishing_a_stop_finalises_the_summary_as_stopped(make_run: Any, smtp_server: Any, sent: list[Any]) -> None:
    run_id = make_run(DAG, state="running")
    report_progress(DAG, run_id, "sms", {"total": 50, "sent": 20, "failed": 1, "in_doubt": 2})
    core.stop_run(DAG, run_id, actor="alice", note="Wrong list")
    assert rows(run_id=run_id) == {}
    core.finish_stopping_runs()
    found = rows(run_id=run_id)
    assert {key: (r["status"], r["sent"], r["in_doubt"]) for key, r in found.items()} == {
        (run_id, "email"): ("stopped", 0, 0),
        (run_id, "sms"): ("stopped", 20, 2),
    }
    assert ("messages.sent.cr_campaign.sms", 20, None) in sent
    assert summaries.finalise_ended(backfill=True) == 0  # the backfill has nothing to add


def test_a_run_without_channels_gets_one_row_so_it_is_not_backfilled_again(make_run: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(summaries, "_declared", lambda tags: [])
    run_id = make_run(DAG, state="success")
    assert summaries.finalise_ended(backfill=True) == 1
    assert list(rows(run_id=run_id)) == [(run_id, summaries.NO_CHANNEL)]
    assert summaries.finalise_ended(backfill=True) == 0
    assert monitor.campaign_metrics(DAG, limit=10).runs[0].sent == 0


def test_a_run_not_ended_yet_stays_pending(make_run: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    run_id = make_run(DAG, state="running")
    summaries.mark_ended(DAG, run_id)  # the listener fired, the scheduler has not committed yet
    assert summaries.finalise_ended(backfill=False) == 0
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(state="success", end_date=utcnow()))
    assert summaries.finalise_ended(backfill=False) == 1
    assert rows(run_id=run_id)


def test_the_backfill_takes_bounded_batches_in_a_constant_number_of_statements(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summaries, "BACKFILL_BATCH", 3)
    made = [make_run(DAG, state="success") for _ in range(7)]
    for run_id in made:
        report_progress(DAG, run_id, "email", {"total": 2, "sent": 2, "failed": 0})
    counts = []
    for _ in range(3):
        with counted() as statements:
            done = summaries.finalise_ended(backfill=True)
        counts.append((done, len(statements)))
    assert [done for done, _ in counts] == [3, 3, 1]
    assert counts[0][1] == counts[1][1] == counts[2][1]
    assert {run_id for run_id, _ in rows()} == set(made)


def test_the_overview_counts_summaries_and_live_runs(make_run: Any) -> None:
    from airflow.utils.session import create_session

    today = make_run(DAG, state="success")
    report_progress(DAG, today, "email", {"total": 10, "sent": 7, "failed": 3})
    days_ago = make_run(DAG, state="success")
    report_progress(DAG, days_ago, "sms", {"total": 5, "sent": 5, "failed": 0})
    summaries.finalise_ended(backfill=True)
    earlier = utcnow() - timedelta(days=3)
    move_end(days_ago, earlier)
    with create_session() as session:
        session.execute(update(run_summary).where(run_summary.c.run_id == days_ago).values(ended_at=earlier))
    going = make_run(DAG, state="running")
    report_progress(DAG, going, "email", {"total": 10, "sent": 2, "failed": 1})
    for run_id in (today, days_ago):
        drop_xcom(run_id)
    seen = overview()
    assert (seen.sent_today, seen.failed_today) == (7 + 2, 3 + 1)
    assert (seen.sent_7_days, seen.failed_7_days) == (7 + 5 + 2, 3 + 1)
    assert overview(dag_ids={"cr_plain"}).sent_7_days == 0


def test_the_listeners_hand_campaign_runs_to_the_scheduler_housekeeper(monkeypatch: pytest.MonkeyPatch) -> None:
    def ended(dag_id: str, run_id: str, tags: set[str] | None) -> SimpleNamespace:
        return SimpleNamespace(dag_id=dag_id, run_id=run_id, dag=SimpleNamespace(tags=tags) if tags else None)

    monkeypatch.setattr(listeners, "_housekeeper", SimpleNamespace(running=True))
    listeners.on_dag_run_success(dag_run=ended(DAG, "r1", {"campaign", "channel:email"}), msg="success")
    listeners.on_dag_run_failed(dag_run=ended("cr_plain", "r2", {"etl"}), msg="task_failure")
    listeners.on_dag_run_failed(dag_run=ended("cr_slow", "r3", None), msg="task_failure")  # tags unknown
    assert set(summaries._take_pending()) == {(DAG, "r1"), ("cr_slow", "r3")}
    monkeypatch.setattr(listeners, "_housekeeper", None)  # not the scheduler: its backfill does it
    listeners.on_dag_run_success(dag_run=ended(DAG, "r4", {"campaign"}), msg="success")
    assert summaries._take_pending() == {}
