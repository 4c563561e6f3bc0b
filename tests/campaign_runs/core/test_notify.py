"""Outbox delivery (core.notify): rendering, claims, retries with backoff, undeliverable rows, no double sending."""

from __future__ import annotations

import threading

from campaign_runs import core
from campaign_runs.core import notify
from campaign_runs.tables import email_outbox
from sqlalchemy import func, select

from tests.support.fixtures import SmtpSink, body_of


def test_render_escapes_and_prefixes() -> None:
    email = notify.render(
        "skipped",
        {
            "username": "alice",
            "campaign": "newsletter",
            "run_id": "scheduled__2026-01-05",
            "note": "<b>bold</b>",
            "campaign_url": "http://x/c",
            "run_url": "http://x/r",
            "new_run_id": "",
        },
    )
    assert email.subject == "[Campaign Runs] Run scheduled__2026-01-05 of newsletter skipped"
    assert "&lt;b&gt;bold&lt;/b&gt;" in email.body_html
    assert '<a href="http://x/c">Open the campaign</a>' in email.body_html


def test_concurrent_deliverers_send_each_email_once(make_run, smtp_server: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    run_ids = [make_run("cr_campaign", state="failed") for _ in range(6)]
    with create_session() as session:  # outbox rows only: no delivery starts on commit
        for run_id in run_ids:
            context = notify.action_context("cr_campaign", run_id, "batch skip")
            notify.enqueue(
                session,
                kind="skipped",
                dag_id="cr_campaign",
                run_id=run_id,
                username="alice",
                action_id=None,
                context=context,
            )
    barrier = threading.Barrier(4)
    sent: list[int] = []
    lock = threading.Lock()

    def deliverer() -> None:
        barrier.wait()
        with create_session() as session:
            count = notify.deliver(session)
        with lock:
            sent.append(count)

    threads = [threading.Thread(target=deliverer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(sent) == 6, sent
    messages = smtp_server.wait_for(6)
    assert sorted(str(m["Subject"]) for m in messages) == sorted(
        f"[Campaign Runs] Run {run_id} of cr_campaign skipped" for run_id in run_ids
    )
    assert len({m["Message-ID"] for m in messages}) == 6
    with create_session() as session:
        statuses = session.execute(select(email_outbox.c.status, func.count()).group_by(email_outbox.c.status)).all()
    assert statuses == [("sent", 6)]
    assert core.housekeeping_pass() == ([], 0)
    assert "batch skip" in body_of(messages[0])


def test_a_claimed_row_is_not_sent_by_another_process(make_run, smtp_server: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    with create_session() as session:  # an outbox row only: no delivery starts on commit
        notify.enqueue(
            session,
            kind="skipped",
            dag_id="cr_campaign",
            run_id=run_id,
            username="alice",
            action_id=None,
            context=notify.action_context("cr_campaign", run_id, "x"),
        )
    with create_session() as session:
        claimed = notify._claim(session, None, 10)  # another process holds it, mid-send
    assert len(claimed) == 1
    with create_session() as session:
        assert notify.deliver(session) == 0
    assert smtp_server.messages == []


def test_email_waits_while_smtp_is_down_and_is_delivered_once_later(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.support.airflow_env import free_port
    from tests.support.fixtures import start_smtp

    port = free_port()
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(port))  # nothing listens there yet
    run_id = make_run("cr_campaign", state="failed")
    result = core.skip_run("cr_campaign", run_id, actor="alice", note="later")
    assert result.status_after == "skipped"
    core.wait_for_deliveries(10)

    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(select(email_outbox)).one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Connection refused" in row.last_error
    assert row.next_attempt_at > row.created_at

    controller, sink = start_smtp(port)
    try:
        with create_session() as session:  # make it due now instead of waiting out the backoff
            session.execute(email_outbox.update().values(next_attempt_at=row.created_at))
        assert core.housekeeping_pass() == ([], 1)
        assert core.housekeeping_pass() == ([], 0)
        [message] = sink.wait_for(1)
        assert message["Message-ID"] == row.message_id
    finally:
        controller.stop()
    with create_session() as session:
        assert session.execute(select(email_outbox.c.status)).scalar_one() == "sent"


def test_user_without_email_still_acts_and_the_outbox_says_why(make_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    assert core.skip_run("cr_campaign", run_id, actor="nomail", note="no mail").status_after == "skipped"
    with create_session() as session:
        row = session.execute(select(email_outbox)).one()
    assert (row.status, row.recipient, row.last_error) == (
        "undeliverable",
        None,
        "User 'nomail' has no email address.",
    )


def test_backoff_grows_and_is_capped() -> None:
    from campaign_runs.core.notify import backoff_seconds

    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(30) == 600
