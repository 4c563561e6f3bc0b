"""Monitor numbers (core.monitor): per run and channel, statuses, interventions and work-list waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.core import monitor, summaries
from campaign_runs.domain import InvalidOptionError, NotFoundError, utcnow
from campaign_runs.tables import email_outbox, run_record, worklist_entry
from sqlalchemy import insert, update

from tests.campaign_runs.core.test_restart_options import report_progress

DAG = "cr_campaign"


def _set(table: Any, values: dict[str, Any], *where: Any) -> None:
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(table).where(*where).values(**values))


@pytest.fixture
def history(make_run: Any, smtp_server: Any) -> dict[str, str]:
    """Completed, stopped then restarted, skipped and failed runs, with progress of their channels."""
    completed = make_run(DAG, state="success")
    report_progress(DAG, completed, "email", {"total": 100, "sent": 90, "failed": 10, "in_doubt": 0})
    report_progress(DAG, completed, "sms", {"total": 50, "sent": 50, "failed": 0})
    stopped = make_run(DAG, state="running")
    report_progress(DAG, stopped, "email", {"total": 100, "sent": 40, "failed": 2, "in_doubt": 3})
    core.stop_run(DAG, stopped, actor="alice", note="Wrong audience")
    core.finish_stopping_runs()
    restarted = core.restart_run(DAG, stopped, actor="alice", note="Audience fixed").new_run_id
    skipped = make_run(DAG, state="failed")
    core.skip_run(DAG, skipped, actor="bob", note="Not needed today")
    failed = make_run(DAG, state="failed")
    report_progress(DAG, failed, "sms", {"total": 20, "sent": 5, "failed": 15})
    return {
        "completed": completed,
        "stopped": stopped,
        "restarted": str(restarted),
        "skipped": skipped,
        "failed": failed,
    }


def test_numbers_per_run_and_channel_statuses_and_interventions(history: dict[str, str]) -> None:
    metrics = monitor.campaign_metrics(DAG, limit=10)
    by_run = {run.run_id: run for run in metrics.runs}
    assert set(by_run) == set(history.values())
    completed = {c.channel: c for c in by_run[history["completed"]].channels}
    assert (completed["email"].sent, completed["email"].failed, completed["email"].total) == (90, 10, 100)
    assert completed["email"].delivery_rate == 0.9
    assert (completed["sms"].sent, completed["sms"].delivery_rate) == (50, 1.0)
    stopped = by_run[history["stopped"]]
    assert stopped.status == "skipped"  # restarted: the old run reads skipped, the new one replaces it
    assert (stopped.stops, stopped.restarts, stopped.skips) == (1, 1, 0)
    assert {c.channel: c.in_doubt for c in stopped.channels} == {"email": 3, "sms": 0}
    assert by_run[history["skipped"]].skips == 1
    assert by_run[history["restarted"]].restart_of == history["stopped"]
    assert by_run[history["failed"]].failed == 15
    assert metrics.status_mix["completed"] == 1
    assert metrics.status_mix["skipped"] == 2
    assert metrics.status_mix["failed"] == 1
    assert [(i.run_id, i.action, i.note) for i in metrics.interventions] == [
        (history["stopped"], "stop", "Wrong audience"),
        (history["stopped"], "restart", "Audience fixed"),
        (history["skipped"], "skip", "Not needed today"),
    ]
    totals = {c.channel: (c.sent, c.failed, c.in_doubt, c.total) for c in metrics.totals}
    assert totals == {"email": (130, 12, 3, 200), "sms": (55, 15, 0, 70)}


def test_suppressed_and_skipped_per_run_and_in_the_totals(make_run: Any) -> None:
    import csv
    import io

    import pendulum

    slot = pendulum.datetime(2041, 1, 1, tz="UTC")  # a range of their own: runs of other tests stay out
    done = make_run(DAG, state="success", logical_date=slot)
    report_progress(
        DAG, done, "email", {"total": 90, "sent": 90, "failed": 0, "suppressed": 4, "skipped": {"no_consent": 6}}
    )
    summaries.finalise_ended(backfill=True)  # one run from its summary
    going = make_run(DAG, state="running", logical_date=slot.add(days=1))  # the other live from XCom
    skipped = {"no_consent": 1, "duplicate": 2}
    report_progress(DAG, going, "email", {"total": 50, "sent": 10, "failed": 0, "suppressed": 1, "skipped": skipped})
    report_progress(DAG, going, "sms", {"total": 5, "sent": 5, "failed": 0})
    metrics = monitor.campaign_metrics(DAG, limit=10, since=slot, until=slot.add(days=2))
    assert [r.run_id for r in metrics.runs] == [going, done]
    totals = {c.channel: (c.sent, c.total, c.suppressed, c.skipped) for c in metrics.totals}
    assert totals == {
        "email": (100, 140, 5, {"no_consent": 7, "duplicate": 2}),
        "sms": (5, 5, 0, {}),
    }
    assert {c.channel: c.skipped_text for c in metrics.totals} == {
        "email": "9 (no consent: 7, duplicate: 2)",
        "sms": "0",
    }
    rows = {(r["run_id"], r["channel"]): r for r in monitor.table_rows(metrics)}
    assert (rows[done, "email"]["suppressed"], rows[done, "email"]["skipped"]) == (4, {"no_consent": 6})
    assert (rows[going, "sms"]["suppressed"], rows[going, "sms"]["skipped"]) == (0, {})
    exported = {(r["run_id"], r["channel"]): r for r in csv.DictReader(io.StringIO(monitor.table_csv(metrics)))}
    assert (exported[going, "email"]["suppressed"], exported[going, "email"]["skipped"]) == (
        "1",
        '{"duplicate": 2, "no_consent": 1}',
    )
    assert monitor.summary(metrics)["totals"][0] == {
        "channel": "email",
        "sent": 100,
        "failed": 0,
        "in_doubt": 0,
        "total": 140,
        "suppressed": 5,
        "skipped": {"no_consent": 7, "duplicate": 2},
        "delivery_rate": 0.7143,
        "delivery": "",  # neither run froze its channels, and no tag says a dry run
        "dry_run": False,
    }


def test_each_run_says_how_it_delivered_as_frozen_else_as_the_campaign_is_tagged(
    make_run: Any, dry_run_tags: Any
) -> None:
    import pendulum

    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    slot = pendulum.datetime(2045, 1, 1, tz="UTC")
    frozen = make_run(DAG, state="success", logical_date=slot)
    report_frozen_channels(DAG, frozen, EMAIL_LIVE_SMS_DRY)
    summaries.finalise_ended(backfill=True)  # its numbers from its summary, its channels still from its XCom
    unfrozen = make_run(DAG, state="running", logical_date=slot.add(days=1))
    dry_run_tags(DAG, "dry-run", "dry-run:email", "dry-run:sms")  # the campaign is a dry run now
    metrics = monitor.campaign_metrics(DAG, limit=10, since=slot, until=slot.add(days=2))
    shown = {(row["run_id"], row["channel"]): row["delivery"] for row in monitor.table_rows(metrics)}
    assert shown == {
        (unfrozen, "email"): "dry run",
        (unfrozen, "sms"): "dry run",
        (frozen, "email"): "smtp",  # a run keeps the channels it froze
        (frozen, "sms"): "dry run",
    }
    totals = {c.channel: (c.delivery, c.dry_run) for c in metrics.totals}
    assert totals == {"email": ("dry run / smtp", False), "sms": ("dry run", True)}


def test_work_list_waits_give_median_and_worst(history: dict[str, str]) -> None:
    from airflow.utils.session import create_session

    now = utcnow()
    _set(worklist_entry, {"created_at": now - timedelta(minutes=10), "resolved_at": now}, worklist_entry.c.id > 0)
    with create_session() as session:
        for minutes, resolved in ((30, True), (50, True), (5, False)):
            session.execute(
                insert(worklist_entry).values(
                    dag_id=DAG,
                    run_id=history["failed"],
                    assignee="bob",
                    reason="stopped",
                    note="",
                    created_at=now - timedelta(minutes=minutes),
                    resolved_at=now if resolved else None,
                )
            )
    metrics = monitor.campaign_metrics(DAG, limit=10)
    assert (metrics.worklist_resolved, metrics.worklist_open) == (3, 1)
    assert metrics.resolve_median_seconds == 1800
    assert metrics.resolve_worst_seconds == 3000


def test_limit_and_date_range_select_the_newest_runs(make_run: Any) -> None:
    import pendulum

    base = pendulum.datetime(2030, 3, 1, tz="UTC")
    ids = [make_run(DAG, state="success", logical_date=base.add(days=day)) for day in range(4)]
    assert [r.run_id for r in monitor.campaign_metrics(DAG, limit=2).runs] == [ids[3], ids[2]]
    ranged = monitor.campaign_metrics(DAG, limit=10, since=base.add(days=1), until=base.add(days=3))
    assert [r.run_id for r in ranged.runs] == [ids[2], ids[1]]
    assert monitor.table_rows(ranged)[0]["run_id"] == ids[2]


@pytest.mark.parametrize("limit", [0, 101])
def test_a_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(InvalidOptionError):
        monitor.campaign_metrics(DAG, limit=limit)


def test_an_unknown_campaign_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        monitor.campaign_metrics("no_such_campaign")


def test_overview_counts_messages_work_stuck_stops_and_the_outbox(make_run: Any) -> None:
    from airflow.utils.session import create_session

    done = make_run(DAG, state="success")
    report_progress(DAG, done, "email", {"total": 10, "sent": 7, "failed": 3})
    summaries.finalise_ended(backfill=True)  # a finished run counts from its summary
    stuck = make_run(DAG, state="running")
    fresh = make_run(DAG, state="running")
    long_ago = utcnow() - monitor.stuck_after() - timedelta(seconds=5)
    now = utcnow()
    with create_session() as session:
        for run_id, requested in ((stuck, long_ago), (fresh, now)):
            session.execute(
                insert(run_record).values(
                    dag_id=DAG, run_id=run_id, status="stopping", stop_requested_at=requested, updated_at=now
                )
            )
        session.execute(
            insert(worklist_entry).values(
                dag_id=DAG, run_id=done, assignee="bob", reason="stopped", note="", created_at=now
            )
        )
        session.execute(
            insert(email_outbox).values(
                dag_id=DAG,
                run_id=done,
                kind="stopped",
                username="bob",
                subject="s",
                body_html="b",
                message_id="<m1@test>",
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now - timedelta(minutes=3),
            )
        )
    seen = monitor.overview()
    assert (seen.sent_today, seen.failed_today, seen.sent_7_days, seen.failed_7_days) == (7, 3, 7, 3)
    assert seen.open_worklist == 1
    assert [r.run_id for r in seen.stuck_runs] == [stuck]
    assert seen.outbox_backlog == 1
    assert seen.oldest_pending_seconds is not None and seen.oldest_pending_seconds >= 180
    hidden = monitor.overview(dag_ids={"cr_plain"})
    assert (hidden.sent_7_days, hidden.open_worklist, hidden.stuck_runs) == (0, 0, [])
    assert hidden.outbox_backlog == 1


def test_the_run_order_kept_between_requests_follows_new_and_deleted_runs(make_run: Any) -> None:
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    base = pendulum.datetime(2030, 6, 1, tz="UTC")
    ids = [make_run(DAG, state="success", logical_date=base.add(days=day)) for day in range(3)]

    def listed() -> list[str]:
        return [r.run_id for r in monitor.campaign_metrics(DAG, limit=2).runs]

    assert listed() == [ids[2], ids[1]]
    assert listed() == [ids[2], ids[1]]  # the same, from the order kept
    newer = make_run(DAG, state="success", logical_date=base.add(days=5))
    assert listed() == [newer, ids[2]]
    # Delete the newest run and make one far older: SQLite may give it the deleted run's id.
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == DAG, DagRun.run_id == newer))
    older = make_run(DAG, state="success", logical_date=base.subtract(days=30))
    assert listed() == [ids[2], ids[1]]
    assert older not in listed()
