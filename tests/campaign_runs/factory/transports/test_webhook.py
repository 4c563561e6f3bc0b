"""The webhook channel: the real client code (``HttpHook``) against the local receiver rig; its JSON template."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from campaign_runs.factory import answers
from campaign_runs.factory.answers import ChannelUnavailable
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.channels import BatchOutcome, ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.spec import CampaignSpecError, parse_spec
from campaign_runs.factory.transports.dry_run import SinkAdapter
from campaign_runs.factory.transports.webhook import (
    RENDERED_MAX,
    BodyTemplate,
    DryRunWebhookAdapter,
    WebhookAdapter,
    WebhookSettings,
)

from tests.campaign_runs.factory.transports.test_twilio import (
    RecordingGate,
    adapter_for,
    dispatch,
    go_away_after,
    ledger_counts,
    recipients,
)
from tests.support.rigs import webhook
from tests.support.rigs.webhook import BODY, ENDPOINT, TENANT, WebhookRig

HOSTILE = ('"}], "injected": {"$id": true}, "x": ["\\"${first_name}\\u0000' * 200)[:10_240]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookRig]:
    """A local webhook receiver for one test."""
    with webhook.rig(monkeypatch) as running:
        yield running


def body(recipient: Recipient, campaign: str = "c") -> dict[str, Any]:
    """The rig's template, rendered for ``recipient`` by hand."""
    country = recipient.values["country"]
    return {
        "event": "campaign.message",
        "campaign": campaign,
        "to": recipient.id,
        "recipient": {"name": recipient.values["first_name"], "country": country},
        "text": f"Hello {recipient.values['first_name']}",
        "tags": ["campaign", country],
        "priority": 1,
        "test": False,
    }


def hostile(recipient: Recipient) -> Recipient:
    """``recipient`` whose first name is 10 KB of quotes, braces, ``$`` placeholders and escapes."""
    return Recipient(recipient.id, recipient.position, values={**recipient.values, "first_name": HOSTILE})


def test_each_message_is_the_request_the_receiver_documents(rig: WebhookRig, tmp_path: Path) -> None:
    """POST to the endpoint with the Connection's auth and headers, JSON, an Idempotency-Key; one session per batch."""
    result = dispatch(tmp_path, adapter_for(rig, tmp_path), 12)
    assert (result.sent, result.failed, result.in_doubt) == (12, 0, 0)
    assert rig.accepted() == [r.id for r in recipients(12)]
    first = rig.sends()[0]
    assert (first.method, first.path, first.query) == ("POST", ENDPOINT, "")
    assert first.basic_auth() == (rig.login, rig.password)
    assert (first.header("X-Api-Key"), first.header("X-Tenant")) == (rig.api_key, TENANT)
    assert first.header("Content-Type") == "application/json"
    assert first.header("Idempotency-Key") == "c/run%3Arun-1/seg-00000000"
    assert json.loads(first.body) == body(recipients(1)[0])
    assert "headers" not in first.headers
    assert rig.server.connections == 2


def test_put(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """method: PUT sends with PUT."""
    with webhook.rig(monkeypatch, method="PUT") as rig:
        assert dispatch(tmp_path, adapter_for(rig, tmp_path), 2).sent == 2
        assert [seen.method for seen in rig.seen] == ["PUT", "PUT"]


@pytest.mark.parametrize(("retry_after", "waits"), [(2, [2.0, 2.0]), (None, [0.5, 1.0])])
def test_throttled_then_sent(rig: WebhookRig, tmp_path: Path, retry_after: int | None, waits: list[float]) -> None:
    """A 429 is tried again after its Retry-After (else with backoff), counted, with the same Idempotency-Key."""
    rig.throttle_next(2, retry_after=retry_after)
    outcome, gate = BatchOutcome(), RecordingGate()
    adapter_for(rig, tmp_path).send_batch(recipients(2), outcome, gate)
    assert (len(outcome.delivered), outcome.retried) == (2, 2)
    assert [seconds for seconds in gate.pauses if seconds > 0] == waits
    keys = [seen.header("Idempotency-Key") for seen in rig.sends()]
    assert keys == ["c/run%3Arun-1/seg-00000000"] * 3 + ["c/run%3Arun-1/seg-00000001"]


def test_throttled_six_times_stops_the_channel_losing_nobody(rig: WebhookRig, tmp_path: Path) -> None:
    """Six 429s in a row stop the channel: nothing sent, nobody in doubt; the restart sends all."""
    rig.throttle_next(6, retry_after=0)
    with pytest.raises(ChannelUnavailable, match="HTTP 429"):
        dispatch(tmp_path, adapter_for(rig, tmp_path), 4)
    assert rig.accepted() == [] and ledger_counts(tmp_path, "webhook", 4) == (0, 0)
    assert dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 4).sent == 4


def test_refused_for_good_with_the_receivers_reason(rig: WebhookRig, tmp_path: Path) -> None:
    """A 4xx fails that message with the status and the answer's start; the others go out."""
    refused = recipients(3)[1].id
    rig.refuse_address(refused)
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(recipients(3), outcome, RecordingGate())
    assert ([r.id for r in outcome.failed], len(outcome.delivered), outcome.retried) == ([refused], 2, 0)
    assert list(outcome.reasons) == [f'HTTP 422: Unprocessable Entity: {{"error": "unknown recipient {refused}"}}']


def test_no_secret_in_a_reason_even_when_the_receiver_echoes_it(
    rig: WebhookRig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver repeating the request's credentials in its answer: the reason and the logs mask them."""
    caplog.set_level(logging.DEBUG)
    rig.refuse_address(recipients(1)[0].id, "echo")
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(recipients(1), outcome, RecordingGate())
    [reason] = outcome.reasons
    basic = base64.b64encode(f"{rig.login}:{rig.password}".encode()).decode()
    assert reason.startswith("HTTP 422: ") and "***" in reason
    assert not [s for s in (rig.password, rig.api_key, basic) if s in reason or s in caplog.text]


def test_server_going_away_stops_the_channel_then_nobody_twice(
    rig: WebhookRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver unreachable mid-run: the channel stops (or one message is in doubt); back again, nobody twice."""
    monkeypatch.setattr(answers, "BACKOFF_BASE", 0.001)
    with pytest.raises((ChannelUnavailable, requests.ConnectionError)) as stopped:
        dispatch(tmp_path, adapter_for(rig, tmp_path), 15, state=go_away_after(rig, 4))
    in_doubt = 0 if stopped.type is ChannelUnavailable else 1
    assert ledger_counts(tmp_path, "webhook", 15) == (4, in_doubt) and len(rig.accepted()) == 4
    rig.come_back()
    result = dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 15)
    assert (result.already_reached, result.sent, result.in_doubt) == (4, 11 - in_doubt, in_doubt)
    assert len(rig.accepted()) == len(set(rig.accepted())) == 15 - in_doubt


def test_server_coming_back_while_waiting_loses_nothing(rig: WebhookRig, tmp_path: Path) -> None:
    """The receiver gone after 2 messages and back during the backoff: the batch goes on, each recipient once."""
    gate = RecordingGate(
        on_pause=lambda seconds: rig.come_back() if seconds > 0 else None,
        on_settle=lambda settled: rig.go_away() if settled == 2 else None,
    )
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(recipients(4), outcome, gate)
    assert (len(outcome.delivered), outcome.retried) == (4, 1)
    assert rig.accepted() == [r.id for r in recipients(4)]


def test_check_sends_head_without_a_body(rig: WebhookRig, tmp_path: Path) -> None:
    """check() connects and reports the answer to a HEAD of the endpoint; nothing is sent."""
    answer = adapter_for(rig, tmp_path).check()
    assert answer == f"http: {rig.server.url}{ENDPOINT} answered HEAD with HTTP 200 OK (reachable; nothing sent)"
    [head] = rig.seen
    assert (head.method, head.body, head.header("X-Api-Key")) == ("HEAD", b"", rig.api_key)
    assert rig.accepted() == []


def test_check_failures_say_what_and_show_no_secret(
    rig: WebhookRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong password, a header that is not text, no conn_id, the receiver gone: clear errors, never a secret."""
    caplog.set_level(logging.DEBUG)
    messages = []
    monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_RIG", rig.connection(password="wrong-" + rig.password))
    with pytest.raises(PermissionError, match=r"refused the Connection's credentials \(HTTP 401") as refused:
        adapter_for(rig, tmp_path).check()
    messages.append(str(refused.value))
    for value in (12345, rig.api_key + "\r\nX-Injected: 1"):
        monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_RIG", rig.connection(extra={"headers": {"X-Api-Key": value}}))
        with pytest.raises(ValueError, match="the extra header 'X-Api-Key' must be one line of text") as not_text:
            adapter_for(rig, tmp_path).check()
        messages.append(str(not_text.value))
    context = DeliveryContext("c", "r", "webhook", dict(rig.settings), tmp_path, {})
    with pytest.raises(ValueError, match="set conn_id"):
        WebhookAdapter(context, Pacer(0)).check()
    monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_RIG", rig.connection())
    rig.go_away()
    with pytest.raises(ConnectionError, match=r"is unreachable .*[Cc]onnection refused") as unreachable:
        adapter_for(rig, tmp_path).check()
    messages.append(str(unreachable.value))
    assert not [text for text in [*messages, caplog.text] if rig.password in text or rig.api_key in text]


def test_a_hostile_recipient_value_stays_one_json_string(rig: WebhookRig, tmp_path: Path) -> None:
    """10 KB of quotes, braces, ``$`` and escapes in a field is sent as that one string: the shape cannot change."""
    targets = [hostile(recipient) for recipient in recipients(2)]
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(targets, outcome, RecordingGate())
    assert len(outcome.delivered) == 2
    sent = json.loads(rig.sends()[0].body)
    assert sent["recipient"]["name"] == HOSTILE and sent["text"] == f"Hello {HOSTILE}" and len(HOSTILE) == 10_240
    assert set(sent) == set(json.loads(BODY))


def test_placeholders_fill_string_values_only_and_unknown_ones_stay() -> None:
    """Keys, numbers and booleans are left alone; ``$$`` is a dollar; an unknown placeholder stays as written."""
    template = BodyTemplate('{"$id": ["$id", "${first_name}x", "$nope", "$$5", 7, true, null], "n": {"$x": "$x"}}')
    values = {"id": "42", "first_name": "Tess", "x": '"}'}
    assert template.render(values) == {"$id": ["42", "Tessx", "$nope", "$5", 7, True, None], "n": {"$x": '"}'}}
    assert json.loads(template.text(values)) == template.render(values)


def test_a_body_over_the_limit_fails_that_message(rig: WebhookRig, tmp_path: Path) -> None:
    """A recipient whose values make the body larger than RENDERED_MAX fails without anything sent."""
    big = recipients(1)[0]
    big = Recipient(big.id, big.position, values={**big.values, "first_name": "x" * RENDERED_MAX})
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch([big], outcome, RecordingGate())
    assert len(outcome.failed) == 1 and rig.seen == []
    [reason] = outcome.reasons
    size = len(json.dumps(body(big), separators=(",", ":")).encode())
    assert reason == f"the webhook body is {size} bytes for this recipient; the limit is {RENDERED_MAX}"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"body": "{"}, "body: is not JSON"),
        ({"body": '{"a": 1, "a": 2}'}, "body: the key 'a' appears twice"),
        ({"body": '{"a": NaN}'}, "body: NaN is not JSON"),
        ({"body": '"$id"'}, "body: must be a JSON object or array"),
        ({"body": "[" * 40 + "]" * 40}, "body: nests objects and arrays deeper than 32"),
        ({"body": "[" * 5000 + "]" * 5000}, "body: nests objects and arrays deeper than 32"),
        ({"body": "[" + "1," * 6000 + "1]"}, "body: is 12003 characters long; the limit is 10000"),
        ({"body": "{}", "method": "GET"}, "method: 'GET' must be one of POST, PUT"),
        ({"body": "{}", "address_field": "first_name"}, "address_field: 'first_name' must be one of"),
        ({"body": "{}", "endpoint": "hooks/a b"}, "endpoint: 'hooks/a b' must be a URL path"),
        ({"body": "{}", "endpoint": "hooks#frag"}, "endpoint: 'hooks#frag' must be a URL path"),
    ],
)
def test_settings_that_cannot_be_sent_are_refused(settings: dict[str, Any], message: str) -> None:
    """The template and the settings are checked once, naming the setting (before any message)."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        WebhookAdapter.validate(settings)


def test_the_endpoint_cannot_move_the_host() -> None:
    """The endpoint is appended after a '/': ``@other.host`` or ``//other.host`` stay paths of the Connection's host."""
    for endpoint in ("@evil.example/x", "//evil.example/x", "/hooks?x=1"):
        url = WebhookSettings.of({"body": "{}", "endpoint": endpoint}).url("https://hooks.example")
        assert requests.utils.urlparse(url).netloc == "hooks.example"


def test_idempotency_key_is_encoded_and_bounded(tmp_path: Path) -> None:
    """Each part is percent-encoded (a '/' in an id cannot shift them); an overlong key becomes a digest."""
    context = DeliveryContext("camp/1", "manual__2026 x", "webhook", {"body": "{}"}, tmp_path, {}, conn_id="x")
    adapter = WebhookAdapter(context, Pacer(0))
    assert adapter.idempotency_key(Recipient("a/b c", 0)) == "camp%2F1/run%3Amanual__2026%20x/a%2Fb%20c"
    assert adapter.idempotency_key(Recipient("é" * 200, 0)).startswith("sha256:")


def test_address_field_picks_the_recipient_field(tmp_path: Path) -> None:
    """address_field says which recipient field the channel addresses (id by default)."""
    recipient = recipients(1)[0]
    for field, expected in (("id", recipient.id), ("email", recipient.email), ("push_token", recipient.push_token)):
        context = DeliveryContext("c", "r", "webhook", {"body": "{}", "address_field": field}, tmp_path, {})
        assert WebhookAdapter(context, Pacer(0)).address(recipient) == expected
        assert DryRunWebhookAdapter(context, Pacer(0)).address(recipient) == expected


def test_dry_run_writes_the_rendered_body(tmp_path: Path) -> None:
    """The dry run writes each recipient's body exactly as it would be sent, and sends nothing."""
    context = DeliveryContext("c", "r", "webhook", {"body": BODY}, tmp_path, {"campaign_id": "c"})
    adapter = ChannelAdapter.for_transport("webhook", "dry_run")(context, Pacer(0))
    assert isinstance(adapter, DryRunWebhookAdapter) and isinstance(adapter, SinkAdapter)
    outcome = BatchOutcome()
    adapter.send_batch(recipients(2), outcome)
    lines = [json.loads(line) for line in (tmp_path / "c" / "webhook.jsonl").read_text().splitlines()]
    assert [(line["to"], json.loads(line["body"])) for line in lines] == [(r.id, body(r)) for r in recipients(2)]


def campaign(channel: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A campaign document with one webhook channel."""
    return {
        "id": "hooks",
        "description": "Webhook campaign.",
        "owner": "ops",
        "owner_email": "ops@example.com",
        "schedule": {"cron": None, "start_date": "2026-01-01"},
        "audience": {"segment": "everyone", "size": 5, "population": 10},
        "channels": {"webhook": channel},
        **top,
    }


def test_the_campaign_file_declares_a_webhook_channel(tmp_path: Path) -> None:
    """channels: {webhook: {transport: http, conn_id, body, ...}} parses; the dry run uses the sink."""
    declared = {"transport": "http", "conn_id": "crm_hooks", "body": BODY, "endpoint": "hooks/x", "method": "PUT"}
    document = yaml.safe_load(yaml.safe_dump(campaign(declared)))
    channel = parse_spec(document, tmp_path / "hooks.yaml").channel("webhook")
    assert (channel.transport, channel.conn_id, channel.adapter_transport) == ("http", "crm_hooks", "http")
    assert (channel.settings["body"], channel.settings["endpoint"], channel.settings["method"]) == (
        BODY,
        "hooks/x",
        "PUT",
    )
    assert channel.settings["address_field"] == "id"
    dry = parse_spec(campaign(declared, delivery="dry_run"), tmp_path / "hooks.yaml").channel("webhook")
    assert dry.adapter_transport == "dry_run"
    implicit = parse_spec(campaign({"conn_id": "crm_hooks", "body": BODY}), tmp_path / "hooks.yaml")
    assert implicit.channel("webhook").transport == "http"
    sink = parse_spec(campaign({"transport": "dry_run", "body": BODY}), tmp_path / "hooks.yaml").channel("webhook")
    assert (sink.adapter_transport, sink.conn_id) == ("dry_run", "")  # a sink needs no Connection


@pytest.mark.parametrize(
    ("channel", "field", "message"),
    [
        ({"transport": "http", "body": "{}"}, "channels.webhook.conn_id", "is required"),
        ({"transport": "http", "conn_id": "crm"}, "channels.webhook.body", "is required"),
        ({"body": "{}", "delivery": "dry_run"}, "channels.webhook.conn_id", "is required"),
        ({"conn_id": "crm", "body": "{}", "headers": {"a": "b"}}, "channels.webhook.headers", "unknown field"),
        ({"conn_id": "crm", "body": "{}", "method": "GET"}, "channels.webhook.method", "must be one of POST, PUT"),
        ({"conn_id": "crm", "body": "{}", "address_field": "name"}, "channels.webhook.address_field", "one of id,"),
        ({"transport": "smtp", "conn_id": "crm", "body": "{}"}, "channels.webhook.transport", "not a transport"),
    ],
)
def test_the_campaign_file_refuses_a_webhook_channel(
    tmp_path: Path, channel: dict[str, Any], field: str, message: str
) -> None:
    """A live webhook channel without its own Connection, without a body, with unknown fields or values is refused."""
    with pytest.raises(CampaignSpecError) as refused:
        parse_spec(campaign(channel), tmp_path / "hooks.yaml")
    assert refused.value.field_name == field and message in refused.value.message


def test_credentials_refused_mid_run_stop_the_channel_losing_nobody(
    rig: WebhookRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 means every message would be refused: the channel stops at once, nobody failed or in doubt."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{rig.conn_id.upper()}", rig.connection(password="rotated-away"))
    with pytest.raises(ChannelUnavailable, match=r"refused the credentials of Connection webhook_rig \(HTTP 401"):
        dispatch(tmp_path, adapter_for(rig, tmp_path), 4)
    assert len(rig.seen) == 1 and rig.accepted() == [] and ledger_counts(tmp_path, "webhook", 4) == (0, 0)
    monkeypatch.setenv(f"AIRFLOW_CONN_{rig.conn_id.upper()}", rig.connection())
    assert dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 4).sent == 4
