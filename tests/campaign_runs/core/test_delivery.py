"""Emails an action writes are sent by the core after its transaction commits, and never after a rollback."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.domain import Action, UnknownActionError
from campaign_runs.tables import email_outbox
from sqlalchemy import func, select

from tests.support.fixtures import SmtpSink


def outbox_rows() -> int:
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(email_outbox)) or 0


def test_an_action_emails_once_its_own_transaction_commits(make_run: Any, smtp_server: SmtpSink) -> None:
    run_id = make_run("cr_campaign", state="failed")
    result = core.perform("skip", "cr_campaign", run_id, actor="alice", note="Audience was wrong")
    assert core.wait_for_deliveries(30)
    (message,) = smtp_server.wait_for(1)
    assert str(message["Subject"]) == f"[Campaign Runs] Run {run_id} of cr_campaign skipped"
    assert result.outbox_ids and len(smtp_server.messages) == 1


def test_in_the_callers_session_nothing_is_sent_before_its_commit(make_run: Any, smtp_server: SmtpSink) -> None:
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    with create_session() as session:
        core.perform(Action.SKIP, "cr_campaign", run_id, actor="alice", note="Later", session=session)
        assert core.wait_for_deliveries(30)
        assert smtp_server.messages == []  # written, not yet committed: nothing may leave
    assert core.wait_for_deliveries(30)
    assert len(smtp_server.wait_for(1)) == 1


def test_a_rolled_back_action_sends_nothing_and_the_next_commit_does_not_send_it(
    make_run: Any, smtp_server: SmtpSink
) -> None:
    from airflow.utils.session import create_session

    first, second = make_run("cr_campaign", state="failed"), make_run("cr_campaign", state="failed")
    with create_session() as session:
        core.perform("skip", "cr_campaign", first, actor="alice", note="Undone", session=session)
        session.rollback()
        core.perform("skip", "cr_campaign", second, actor="alice", note="Kept", session=session)
    assert core.wait_for_deliveries(30)
    (message,) = smtp_server.wait_for(1)
    assert second in str(message["Subject"])
    assert outbox_rows() == 1
    assert core.get_run("cr_campaign", first).status == "failed"


def test_perform_refuses_an_unknown_action_and_changes_nothing(make_run: Any) -> None:
    run_id = make_run("cr_campaign", state="failed")
    with pytest.raises(UnknownActionError, match="Unknown action 'reassign'; the actions are stop, restart, skip"):
        core.perform("reassign", "cr_campaign", run_id, actor="alice", note="x")
    assert core.get_run("cr_campaign", run_id).status == "failed"
    assert outbox_rows() == 0
