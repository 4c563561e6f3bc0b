"""Trying a campaign's channels (``factory.trial``): Connection checks and ``[TEST]`` sends, against a real SMTP server.

A test send goes to the given addresses only, once, straight through the transport: no ledger, no snapshot, no
progress and no suppression list is written (nothing under the sink directory), and a dry run sends nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.factory.channels import EmailAdapter
from campaign_runs.factory.sources import AudienceSourceError
from campaign_runs.factory.spec import CampaignSpec, parse_spec
from campaign_runs.factory.trial import (
    DRY_RUN_CHECK,
    DRY_RUN_SENT,
    MAX_ADDRESSES,
    TrialError,
    check_channels,
    send_test,
)

from tests.support.airflow_env import free_port
from tests.support.inbox_smtp import Inbox, inbox_smtp

PASSWORD = "pw-7f3c9a1e-never-shown"
CAMPAIGN = """
id: trial_demo
description: Spring promotion.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience: {segment: testers, criteria: {plan: gold}, size: 5}
channels:
  email: {subject: "Spring for $first_name", body: "Hello $first_name, your $plan plan has a gift."}
  sms: {text: "Hi $first_name", sender: SHOP}
"""
SQL_CAMPAIGN = """
id: trial_sql
description: Newsletter to the subscribers table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience:
  source: sql
  conn_id: trial_subscribers
  query: "SELECT subscriber_id, email, first_name FROM subscribers ORDER BY subscriber_id"
  columns: {id: subscriber_id}
channels:
  email: {subject: "Hello $first_name", body: "News for $first_name ($subscriber_id)"}
"""
HOOK_CAMPAIGN = """
id: trial_hook
description: Events to the CRM.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience: {segment: testers, criteria: {plan: gold}, size: 5}
channels:
  webhook:
    conn_id: trial_hook
    endpoint: /events
    body: '{"user": "$id", "text": "Hi $first_name"}'
"""


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server behind Connection ``campaign_smtp``, whose extra holds a secret never to be shown."""
    with inbox_smtp(monkeypatch, api_token=PASSWORD) as handler:
        yield handler


def spec_of(text: str, tmp_path: Path) -> CampaignSpec:
    data = yaml.safe_load(text)
    return parse_spec(data, tmp_path / f"{data['id']}.yaml")


def nothing_written(sink_dir: Path) -> None:
    """No ledger, snapshot, sink or suppression list: the sink directory was never created."""
    assert not sink_dir.exists(), sorted(p.name for p in sink_dir.rglob("*"))


def test_a_test_send_reaches_exactly_the_given_addresses_marked_test_and_writes_nothing(
    inbox: Inbox, sink_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(CAMPAIGN, tmp_path)

    sends = send_test(spec, ["ann@example.org", " bob@example.org "], "email")

    assert sorted(inbox.received()) == [
        ("ann@example.org", "[TEST] Spring for David"),
        ("bob@example.org", "[TEST] Spring for David"),
    ]
    assert sorted(inbox.attempts) == ["ann@example.org", "bob@example.org"]
    assert [(s.channel, s.transport, s.to, s.sent, s.answer) for s in sends] == [
        ("email", "smtp", "ann@example.org", True, "sent"),
        ("email", "smtp", "bob@example.org", True, "sent"),
    ]
    assert sends[0].content == {"subject": "[TEST] Spring for David", "body": "Hello David, your gold plan has a gift."}
    message = inbox.messages[0]
    assert "your gold plan has a gift." in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert str(message["X-Campaign-Run-Id"]).startswith("test-send-")
    nothing_written(sink_dir)


def test_addresses_go_to_the_channel_they_fit_and_a_dry_run_channel_sends_and_writes_nothing(
    inbox: Inbox, sink_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(CAMPAIGN, tmp_path)

    sends = send_test(spec, ["+33 6 12 34 56 78", "ann@example.org"], fields={"first_name": "Zoé", "plan": "silver"})

    assert inbox.received() == [("ann@example.org", "[TEST] Spring for Zoé")]
    assert [(s.channel, s.transport, s.to, s.sent, s.answer, s.content) for s in sends] == [
        (
            "email",
            "smtp",
            "ann@example.org",
            True,
            "sent",
            {"subject": "[TEST] Spring for Zoé", "body": "Hello Zoé, your silver plan has a gift."},
        ),
        ("sms", "dry run", "+33612345678", False, DRY_RUN_SENT, {"sender": "SHOP", "text": "[TEST] Hi Zoé"}),
    ]
    nothing_written(sink_dir)


def test_a_dry_run_campaign_sends_nothing_and_returns_the_rendered_messages(
    inbox: Inbox, sink_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(CAMPAIGN + "delivery: dry_run\n", tmp_path)

    sends = send_test(spec, ["ann@example.org"])

    assert [(s.channel, s.transport, s.sent, s.answer, s.content["subject"]) for s in sends] == [
        ("email", "smtp (dry run)", False, DRY_RUN_SENT, "[TEST] Spring for David")
    ]
    assert inbox.attempts == [] and inbox.messages == []
    assert [(c.channel, c.ok, c.answer) for c in check_channels(spec)] == [
        ("email", True, DRY_RUN_CHECK),
        ("sms", True, DRY_RUN_CHECK),
    ]
    nothing_written(sink_dir)


def test_the_first_row_of_a_sql_audience_fills_the_templates_and_no_real_address_is_used(
    inbox: Inbox, sink_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "subscribers.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE subscribers (subscriber_id TEXT, email TEXT, first_name TEXT)")
        db.executemany(
            "INSERT INTO subscribers VALUES (?, ?, ?)",
            [("s0", "real0@example.org", "Ann"), ("s1", "real1@example.org", "Bob")],
        )
    monkeypatch.setenv("AIRFLOW_CONN_TRIAL_SUBSCRIBERS", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    spec = spec_of(SQL_CAMPAIGN, tmp_path)

    sends = send_test(spec, ["tester@example.org"])

    assert inbox.received() == [("tester@example.org", "[TEST] Hello Ann")]
    assert inbox.attempts == ["tester@example.org"]
    assert sends[0].content == {"subject": "[TEST] Hello Ann", "body": "News for Ann (s0)"}
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM subscribers")
    with pytest.raises(TrialError, match="The audience is empty now: give the fields"):
        send_test(spec, ["tester@example.org"])
    monkeypatch.setenv("AIRFLOW_CONN_TRIAL_SUBSCRIBERS", json.dumps({"conn_type": "sqlite", "host": str(tmp_path)}))
    with pytest.raises(AudienceSourceError):
        send_test(spec, ["tester@example.org"])
    assert len(inbox.messages) == 1
    nothing_written(sink_dir)


@pytest.mark.parametrize(
    ("to", "channel", "fields", "words"),
    [
        (
            [f"user{n}@example.org" for n in range(MAX_ADDRESSES + 1)],
            None,
            None,
            "11 addresses: a test goes to at most 10",
        ),
        ([], None, None, "Give at least one address"),
        (["ann@example.org", "not-an-address@"], "email", None, "'not-an-address@' is not an email address"),
        (["ann@example.org", "+33 6"], None, None, "'+33 6' is not an E.164 phone number"),
        (["ann@example.org", "0612345678"], "sms", None, "'ann@example.org' is not an E.164 phone number"),
        (["device-token-1"], None, None, "fits none of the campaign's channels: email (an email address), sms"),
        (["ann@example.org"], "push", None, "Unknown channel 'push': the campaign's channels are email, sms"),
        (["ann@example.org"], None, {"first name": "x"}, "is not a column name"),
        (["ann@example.org"], None, {"plan": {"nested": 1}}, "not a list or object"),
        (["ann@example.org"], None, {"plan": "x" * 8193}, "longer than 8192 characters"),
        (["ann@example.org"], None, ["plan"], "must be a JSON object"),
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_sent(
    inbox: Inbox,
    sink_dir: Path,
    tmp_path: Path,
    to: list[str],
    channel: str | None,
    fields: Any,
    words: str,
) -> None:
    with pytest.raises(TrialError) as refused:
        send_test(spec_of(CAMPAIGN, tmp_path), to, channel, fields)

    assert words in str(refused.value)
    assert inbox.attempts == [] and inbox.messages == []
    nothing_written(sink_dir)


def test_a_refused_test_address_is_reported_and_never_suppressed(inbox: Inbox, sink_dir: Path, tmp_path: Path) -> None:
    inbox.refuse["gone@example.org"] = "550 5.1.1 No such user"

    sends = send_test(spec_of(CAMPAIGN, tmp_path), ["gone@example.org", "ann@example.org"], "email")

    assert [(s.to, s.sent, s.answer) for s in sends] == [
        ("gone@example.org", False, "refused: SMTP 550 5.1.1 No such user"),
        ("ann@example.org", True, "sent"),
    ]
    assert inbox.received() == [("ann@example.org", "[TEST] Spring for David")]
    nothing_written(sink_dir)  # no suppression list was opened, so no bounce was recorded


def test_check_tries_each_connection_and_a_failure_never_shows_the_secret(
    inbox: Inbox, sink_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_of(CAMPAIGN, tmp_path)

    checks = check_channels(spec)

    assert [(c.channel, c.transport, c.conn_id, c.ok, c.answer) for c in checks] == [
        ("email", "smtp", "campaign_smtp", True, "smtp: connected"),
        ("sms", "dry run", "", True, DRY_RUN_CHECK),
    ]
    assert inbox.messages == []

    def leaky(adapter: EmailAdapter, *args: Any) -> Any:  # a provider client whose error quotes the credential
        raise RuntimeError(f"login refused for token {PASSWORD} at {adapter.smtp.host}" + " and more" * 100)

    with monkeypatch.context() as patch:
        patch.setattr(EmailAdapter, "check", leaky)
        patch.setattr(EmailAdapter, "send_one", leaky)
        failed = check_channels(spec)[0]
        sends = send_test(spec, ["ann@example.org"], "email")
    assert not failed.ok and failed.answer.startswith("RuntimeError: login refused for token *** at 127.0.0.1 and")
    assert PASSWORD not in failed.answer and len(failed.answer) <= 300
    assert (sends[0].sent, sends[0].answer[:50]) == (False, "failed: RuntimeError: login refused for token *** ")
    assert PASSWORD not in sends[0].answer and inbox.messages == []

    nobody = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": free_port(), "password": PASSWORD})
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_SMTP", nobody)  # nothing listens there: the connection is refused
    refused = check_channels(spec)[0]
    assert not refused.ok and "not reachable: [Errno 111] Connection refused" in refused.answer
    assert PASSWORD not in refused.answer
    down = send_test(spec, ["ann@example.org"], "email")
    assert [(s.sent, s.answer.split(":")[0]) for s in down] == [(False, "not sent")]
    nothing_written(sink_dir)


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: records each request (method, path, Idempotency-Key, body), answers 204 (HEAD: 405)."""

    def do_HEAD(self) -> None:
        self.server.seen.append(("HEAD", self.path, "", b""))  # type: ignore[attr-defined]
        self.send_response(405)
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(("POST", self.path, self.headers.get("Idempotency-Key", ""), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str, bytes]]]:
    """A webhook receiver on a free port behind Connection ``trial_hook``; what it received."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_TRIAL_HOOK", json.dumps(connection))
    try:
        yield server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_webhook_test_carries_the_test_marker_and_the_given_id_and_each_call_its_own_key(
    receiver: list[tuple[str, str, str, bytes]], sink_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(HOOK_CAMPAIGN, tmp_path)

    first = send_test(spec, ["crm-42"], "webhook")
    second = send_test(spec, ["crm-42"], "webhook")

    assert [(s.channel, s.transport, s.to, s.sent, s.answer) for s in first + second] == [
        ("webhook", "http", "crm-42", True, "sent"),
        ("webhook", "http", "crm-42", True, "sent"),
    ]
    assert [(method, path, json.loads(body)) for method, path, _, body in receiver] == [
        ("POST", "/events", {"campaign_test": "[TEST]", "user": "crm-42", "text": "Hi David"}),
    ] * 2
    keys = [key for _, _, key, _ in receiver]
    assert keys[0] != keys[1] and all(key.startswith("trial_hook/run%3Atest-send-") for key in keys)
    assert json.loads(first[0].content["body"]) == {"campaign_test": "[TEST]", "user": "crm-42", "text": "Hi David"}
    with pytest.raises(TrialError, match="fits none of the campaign's channels: webhook \\(a recipient id\\)"):
        send_test(spec, ["crm-42"])
    check = check_channels(spec)[0]
    assert (check.ok, check.conn_id) == (True, "trial_hook") and "HTTP 405" in check.answer
    assert len(receiver) == 3 and receiver[2][:2] == ("HEAD", "/events")
    nothing_written(sink_dir)
