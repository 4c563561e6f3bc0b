"""Channel adapters: real SMTP (one connection per batch) and JSON-lines sinks; rate limiting."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from campaign_runs.factory.channels import (
    BatchOutcome,
    ChannelAdapter,
    DeliveryContext,
    EmailAdapter,
    Pacer,
    SmtpSettings,
)
from campaign_runs.factory.transports.dry_run import SinkAdapter

from tests.campaign_runs.factory.test_audience import plan
from tests.support.airflow_env import free_port
from tests.support.fixtures import SmtpSink, body_of


class CountingHandler:
    """aiosmtpd handler counting connections (EHLO) and messages."""

    def __init__(self) -> None:
        self.connections = 0
        self.recipients: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("refuse"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.extend(envelope.rcpt_tos)
        return "250 Message accepted"


@pytest.fixture
def counting_smtp() -> Iterator[tuple[CountingHandler, int]]:
    """A real SMTP server that counts connections."""
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def context(channel: str, settings: dict[str, Any], sink_dir: Path) -> DeliveryContext:
    """A delivery context for campaign ``c``."""
    return DeliveryContext("c", "run-1", channel, settings, sink_dir, {"campaign_id": "c"})


def test_email_one_connection_per_batch(counting_smtp: tuple[CountingHandler, int], tmp_path: Path) -> None:
    """Each batch opens exactly one SMTP connection; templates are filled per recipient."""
    handler, port = counting_smtp
    smtp = SmtpSettings("127.0.0.1", port, starttls=False, ssl=False, timeout=5, mail_from="news@example.com")
    adapter = EmailAdapter(
        context(
            "email", {"subject": "Hi $first_name", "body": "For $email", "from_name": "", "reply_to": ""}, tmp_path
        ),
        Pacer(0),
        smtp,
    )
    outcomes = []
    for batch in plan(25).batches(10):
        outcome = BatchOutcome()
        adapter.send_batch(batch, outcome)
        outcomes.append(outcome)
    assert handler.connections == 3
    assert [len(o.delivered) for o in outcomes] == [10, 10, 5]
    assert handler.recipients == [r.email for r in plan(25).recipients()]
    first = next(plan(1).recipients())
    assert str(adapter.message(first)["Subject"]) == f"Hi {first.fields()['first_name']}"


def test_email_refused_recipient_counts_as_failed(counting_smtp: tuple[CountingHandler, int], tmp_path: Path) -> None:
    """A recipient the server refuses is failed; the rest of the batch goes out."""
    handler, port = counting_smtp
    smtp = SmtpSettings("127.0.0.1", port, starttls=False, ssl=False, timeout=5, mail_from="news@example.com")
    adapter = EmailAdapter(
        context("email", {"subject": "s", "body": "b", "from_name": "", "reply_to": ""}, tmp_path), Pacer(0), smtp
    )
    batch = list(plan(3).recipients())
    batch[1] = type(batch[1])(**{**batch[1].__dict__, "email": "refuse@example.com"})
    outcome = BatchOutcome()
    adapter.send_batch(batch, outcome)
    assert [r.id for r in outcome.failed] == [batch[1].id]
    assert len(outcome.delivered) == 2
    assert len(handler.recipients) == 2


def test_sms_and_push_sinks(tmp_path: Path) -> None:
    """SMS and push write one JSON line per message under ``<sink>/<campaign>/<channel>.jsonl``."""
    sms = ChannelAdapter.registry["sms"](context("sms", {"text": "Hi $first_name", "sender": "EX"}, tmp_path), Pacer(0))
    push = ChannelAdapter.registry["push"](
        context("push", {"title": "T", "body": "B $country", "deep_link": ""}, tmp_path), Pacer(0)
    )
    batch = list(plan(7).recipients())
    for adapter in (sms, push):
        adapter.send_batch(batch, BatchOutcome())
    sms_lines = [json.loads(line) for line in (tmp_path / "c" / "sms.jsonl").read_text().splitlines()]
    push_lines = [json.loads(line) for line in (tmp_path / "c" / "push.jsonl").read_text().splitlines()]
    assert [line["to"] for line in sms_lines] == [r.phone for r in batch]
    assert sms_lines[0]["text"] == f"Hi {batch[0].fields()['first_name']}"
    assert [line["to"] for line in push_lines] == [r.push_token for r in batch]
    assert push_lines[2]["body"] == f"B {batch[2].values['country']}"


def test_new_channel_is_one_adapter_class(tmp_path: Path) -> None:
    """Subclassing an adapter with a ``name`` registers a new channel."""

    class WhatsappAdapter(SinkAdapter):
        name = "whatsapp_test"
        required_settings = ("text",)
        optional_settings: ClassVar[dict[str, Any]] = {}

        def address(self, recipient: Any) -> str:
            return str(recipient.phone)

        def payload(self, values: dict[str, Any]) -> dict[str, Any]:
            return {"text": self.context.settings["text"]}

    try:
        assert ChannelAdapter.registry["whatsapp_test"] is WhatsappAdapter
        adapter = WhatsappAdapter(context("whatsapp_test", {"text": "yo"}, tmp_path), Pacer(0))
        adapter.send_batch(list(plan(2).recipients()), BatchOutcome())
        assert len((tmp_path / "c" / "whatsapp_test.jsonl").read_text().splitlines()) == 2
    finally:
        ChannelAdapter.registry.pop("whatsapp_test")


def test_pacer_enforces_rate() -> None:
    """Twenty messages at 100/s take at least 0.19 s."""
    pacer = Pacer(100)
    started = time.monotonic()
    for _ in range(20):
        pacer.wait()
    assert time.monotonic() - started >= 0.19


def test_every_email_carries_its_recipients_one_click_unsubscribe(
    smtp_server: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact headers of real messages: List-Unsubscribe (https link, mailto) and List-Unsubscribe-Post."""
    from campaign_runs.factory.unsubscribe import read_token, unsubscribe_token

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__BASE_URL", "https://campaigns.example.org/")
    smtp = SmtpSettings(
        "127.0.0.1", smtp_server.port, starttls=False, ssl=False, timeout=5, mail_from="news@example.com"
    )
    settings = {"subject": "Hi $first_name", "body": "Leave: $unsubscribe_url", "from_name": "", "reply_to": ""}
    adapter = EmailAdapter(context("email", settings, tmp_path), Pacer(0), smtp)
    batch = list(plan(2).recipients())
    outcome = BatchOutcome()
    adapter.send_batch(batch, outcome)
    assert [r.id for r in outcome.delivered] == [r.id for r in batch]
    for recipient, message in zip(batch, smtp_server.wait_for(2), strict=True):
        token = unsubscribe_token(recipient.email, "c")
        url = f"https://campaigns.example.org/campaign-runs/unsubscribe/{token}"
        mailto = f"mailto:campaign-runs@example.com?subject=unsubscribe%20{token}"  # [smtp] smtp_mail_from
        assert message.items() == [
            ("From", "news@example.com"),
            ("X-Campaign-Id", "c"),
            ("X-Campaign-Run-Id", "run-1"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("To", recipient.email),
            ("Subject", f"Hi {recipient.fields()['first_name']}"),
            ("Date", message["Date"]),
            ("Message-ID", message["Message-ID"]),
            ("X-Campaign-Recipient", recipient.id),
            ("List-Unsubscribe", f"<{url}>, <{mailto}>"),
            ("Content-Transfer-Encoding", "7bit"),
            ("X-Envelope-To", recipient.email),  # added by the test server
        ]
        assert body_of(message) == f"Leave: {url}\r\n"
        sent_at = parsedate_to_datetime(message["Date"])  # RFC 5322: an aware time, in UTC, the second it was rendered
        assert sent_at.utcoffset() == timedelta(0)
        assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
        assert read_token(token) == ("email", recipient.email, "c")
