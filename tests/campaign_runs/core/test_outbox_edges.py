"""Outbox edge cases with real SMTP servers (aiosmtpd): slow sends, refused recipients, capped attempts, resend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from campaign_runs import core
from campaign_runs.core import emails, notify
from campaign_runs.domain import ConflictError, NotFoundError, NotPermittedError, utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import email_outbox
from sqlalchemy import select, update

from tests.support.fixtures import SmtpSink, outbox_rows


@dataclass
class PickySink(SmtpSink):
    """An SMTP server that can refuse recipients and hold the first message before answering it."""

    refuse: dict[str, str] = field(default_factory=dict)
    rcpt_seen: list[str] = field(default_factory=list)
    hold_first: bool = False
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.rcpt_seen.append(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold_first and not self.holding.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky(monkeypatch: pytest.MonkeyPatch) -> Iterator[PickySink]:
    sink = PickySink("127.0.0.1", 0)
    from tests.support.airflow_env import free_port

    sink.port = free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(sink.port))
    try:
        yield sink
    finally:
        sink.release.set()
        controller.stop()


def _enqueue(make_run: Any, username: str = "alice") -> int:
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    with create_session() as session:  # an outbox row only: no delivery starts on commit
        return notify.enqueue(
            session,
            kind="skipped",
            dag_id="cr_campaign",
            run_id=run_id,
            username=username,
            action_id=None,
            context=notify.action_context("cr_campaign", run_id, "edge case"),
        )


def _deliver() -> int:
    from airflow.utils.session import create_session

    with create_session() as session:
        return notify.deliver(session)


def _make_due(outbox_id: int) -> None:
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(email_outbox).where(email_outbox.c.id == outbox_id).values(next_attempt_at=utcnow()))


def _deliver_in_a_housekeeping_pass() -> int:
    """``_deliver`` as the housekeeper runs it: holding the fork guard for the whole pass."""
    from campaign_runs.adapters import fork_guard

    with fork_guard.held():
        return _deliver()


@pytest.mark.parametrize("deliver", [_deliver, _deliver_in_a_housekeeping_pass], ids=["api", "housekeeper"])
def test_a_send_slower_than_the_claim_is_not_sent_twice(make_run, picky: PickySink, monkeypatch, deliver) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__EMAIL_CLAIM_SECONDS", "1")
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_TIMEOUT", "60")
    get_settings.cache_clear()
    outbox_id = _enqueue(make_run)
    picky.hold_first = True
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(deliver()), daemon=True)
    first.start()
    assert picky.holding.wait(30), "the first deliverer never reached DATA"
    # Wait until every claim taken before the server got the message has run out, unless it was renewed.
    claim_ran_out_at = utcnow() + timedelta(seconds=get_settings().email_claim_seconds)
    while utcnow() <= claim_ran_out_at + timedelta(milliseconds=200):
        time.sleep(0.05)
    assert _deliver() == 0  # a second deliverer while the first send still waits for its answer
    [row] = outbox_rows()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["claimed_until"] > claim_ran_out_at  # renewed while sending
    picky.release.set()
    first.join(60)
    assert results == [1]
    [message] = picky.wait_for(1)
    assert picky.rcpt_seen == ["alice@example.com"]
    [row] = outbox_rows()
    assert (row["id"], row["status"], row["attempts"], row["claim_token"]) == (outbox_id, "sent", 1, None)
    assert message["Message-ID"] == row["message_id"]
    assert _deliver() == 0 and len(picky.messages) == 1


def test_a_recipient_refused_for_good_is_failed_not_sent(make_run, picky: PickySink) -> None:  # type: ignore[no-untyped-def]
    picky.refuse["alice@example.com"] = "550 5.1.1 No such mailbox here"
    _enqueue(make_run)
    assert _deliver() == 0
    [row] = outbox_rows()
    assert (row["status"], row["attempts"], row["sent_at"]) == ("failed", 1, None)
    assert "550" in row["last_error"] and "No such mailbox" in row["last_error"]
    assert picky.rcpt_seen == ["alice@example.com"] and picky.messages == []
    _make_due(row["id"])
    assert _deliver() == 0 and picky.rcpt_seen == ["alice@example.com"]  # failed: never tried again


def test_a_temporary_refusal_is_retried_and_capped(make_run, picky: PickySink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__EMAIL_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()
    picky.refuse["alice@example.com"] = "451 4.3.0 Try again later"
    outbox_id = _enqueue(make_run)
    for attempt in (1, 2):
        assert _deliver() == 0
        [row] = outbox_rows()
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert row["next_attempt_at"] > utcnow() and "451" in row["last_error"]
        _make_due(outbox_id)
    assert _deliver() == 0
    [row] = outbox_rows()
    assert (row["status"], row["attempts"]) == ("failed", 3) and "451" in row["last_error"]
    _make_due(outbox_id)
    assert _deliver() == 0
    assert picky.rcpt_seen == ["alice@example.com"] * 3 and picky.messages == []
    assert [e.status for e in emails.run_emails("cr_campaign", row["run_id"], _session())] == ["failed"]

    # An administrator resends it once the server accepts again: pending, attempts reset, sent once, recorded.
    picky.refuse.clear()
    with pytest.raises(NotPermittedError, match="alice"):
        emails.resend_email(outbox_id, "alice")
    with pytest.raises(NotFoundError):
        emails.resend_email(outbox_id, "ghost")
    assert outbox_rows()[0]["status"] == "failed"
    resent = emails.resend_email(outbox_id, "admin")
    assert (resent.status, resent.attempts, resent.last_error) == ("pending", 0, None)
    assert core.wait_for_deliveries(30)
    [message] = picky.wait_for(1)
    assert message["X-Envelope-To"] == "alice@example.com"
    [row] = outbox_rows()
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
    [entry] = core.run_history("cr_campaign", row["run_id"])
    assert (entry.action, entry.actor) == ("resend_email", "admin") and f"email {outbox_id}" in entry.note
    with pytest.raises(ConflictError, match="only failed or undeliverable"):
        emails.resend_email(outbox_id, "admin")
    with pytest.raises(NotFoundError):
        emails.resend_email(10**6, "admin")


def test_an_undeliverable_email_is_resent_once_the_user_has_an_address(make_run, picky: PickySink) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.fab.auth_manager.models import User
    from airflow.utils.session import create_session

    outbox_id = _enqueue(make_run, username="nomail")
    assert outbox_rows()[0]["status"] == "undeliverable"
    with pytest.raises(ConflictError, match="no email address"):
        emails.resend_email(outbox_id, "admin")
    with create_session() as session:
        session.execute(update(User).where(User.username == "nomail").values(email="nomail@example.com"))
    try:
        emails.resend_email(outbox_id, "admin")
        assert core.wait_for_deliveries(30)
        [message] = picky.wait_for(1)
        assert message["X-Envelope-To"] == "nomail@example.com"
        assert [(r["status"], r["recipient"], r["attempts"]) for r in outbox_rows()] == [
            ("sent", "nomail@example.com", 1)
        ]
    finally:
        with create_session() as session:
            session.execute(update(User).where(User.username == "nomail").values(email=""))


def _session() -> Any:
    from airflow import settings

    return settings.Session()


def test_list_emails_filters_by_status(make_run, picky: PickySink) -> None:  # type: ignore[no-untyped-def]
    picky.refuse["alice@example.com"] = "550 5.1.1 No such mailbox here"
    failed_id = _enqueue(make_run)
    sent_id = _enqueue(make_run, username="bob")
    assert _deliver() == 1
    assert [e.id for e in emails.list_emails(status="failed")] == [failed_id]
    assert [e.id for e in emails.list_emails()] == [sent_id, failed_id]
    assert [s for (s,) in _session().execute(select(email_outbox.c.status).order_by(email_outbox.c.id))] == [
        "failed",
        "sent",
    ]
