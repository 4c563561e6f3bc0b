"""Retention (core.retention.clean): finished rows older than the cutoff go; open work and its history stay."""

from __future__ import annotations

from datetime import timedelta

from campaign_runs import core
from campaign_runs.core.retention import clean
from campaign_runs.domain import utcnow
from campaign_runs.tables import email_outbox, run_action, run_record, worklist_entry
from sqlalchemy import update

from tests.campaign_runs.core.helpers import count


def age_everything(days: int) -> None:
    """Move every plugin row ``days`` into the past."""
    from airflow.utils.session import create_session

    past = utcnow() - timedelta(days=days)
    with create_session() as session:
        session.execute(update(email_outbox).values(created_at=past))
        session.execute(update(run_action).values(created_at=past))
        session.execute(
            update(worklist_entry).where(worklist_entry.c.resolved_at.is_not(None)).values(resolved_at=past)
        )


def test_clean_removes_finished_rows_and_keeps_open_work_and_what_it_points_to(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    # A run skipped long ago: its email went out, its history is old. Nothing points to it any more.
    skipped = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", skipped, actor="alice", note="Old news")
    core.wait_for_deliveries(10)
    smtp_server.wait_for(1)
    # A run stopped long ago and still on alice's work list: its entry, its stop and its email stay.
    stopped = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    core.stop_run("cr_campaign", stopped, actor="alice", note="Still open")
    core.housekeeping_pass()
    smtp_server.wait_for(2)
    age_everything(days=40)
    records_before = count(run_record)

    dry = clean(utcnow() - timedelta(days=30), dry_run=True)
    assert (dry.emails, dry.worklist_entries, dry.actions, dry.dry_run) == (2, 0, 1, True)
    assert (count(email_outbox), count(run_action)) == (2, 2)  # a dry run changes nothing

    assert clean(utcnow() - timedelta(days=50)) == clean(utcnow() - timedelta(days=50), dry_run=True).__class__(
        0, 0, 0, False
    )
    done = clean(utcnow() - timedelta(days=30))
    assert (done.emails, done.worklist_entries, done.actions) == (2, 0, 1)
    assert [h.action for h in core.run_history("cr_campaign", stopped)] == ["stop"]  # the open entry's action
    assert core.run_history("cr_campaign", skipped) == []
    assert [e.run_id for e in core.worklist("alice")] == [stopped]
    assert count(run_record) == records_before  # statuses outlive retention
    assert core.get_run("cr_campaign", skipped).status == "skipped"


def test_clean_keeps_pending_emails_and_removes_resolved_entries(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    core.stop_run("cr_campaign", run_id, actor="alice", note="Stop")
    core.housekeeping_pass()
    smtp_server.wait_for(1)
    core.skip_run("cr_campaign", run_id, actor="alice", note="Done with it")  # resolves the work-list entry
    core.wait_for_deliveries(10)
    smtp_server.wait_for(2)
    from airflow.utils.session import create_session

    with create_session() as session:  # one email still pending (its server was down, say)
        session.execute(update(email_outbox).where(email_outbox.c.kind == "skipped").values(status="pending"))
    age_everything(days=40)
    done = clean(utcnow() - timedelta(days=30))
    assert (done.emails, done.worklist_entries, done.actions) == (1, 1, 1)
    assert [h.action for h in core.run_history("cr_campaign", run_id)] == ["skip"]  # the pending email's action
    assert count(email_outbox) == 1 and count(worklist_entry) == 0
