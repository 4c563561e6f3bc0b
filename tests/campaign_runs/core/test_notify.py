"""Outbox delivery: rendering, claims, and no double sending when several processes deliver at once."""

from __future__ import annotations

import threading

from campaign_runs import core
from campaign_runs.core import notify
from campaign_runs.models import email_outbox
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
                session, kind="skipped", dag_id="cr_campaign", run_id=run_id, username="alice", action_id=None,
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
            session, kind="skipped", dag_id="cr_campaign", run_id=run_id, username="alice", action_id=None,
            context=notify.action_context("cr_campaign", run_id, "x"),
        )
    with create_session() as session:
        claimed = notify._claim(session, None, 10)  # another process holds it, mid-send
    assert len(claimed) == 1
    with create_session() as session:
        assert notify.deliver(session) == 0
    assert smtp_server.messages == []
