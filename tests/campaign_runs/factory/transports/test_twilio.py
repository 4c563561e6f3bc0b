"""SMS through Twilio: the real client code (``HttpHook``) against the local Twilio rig, driven by the Dispatcher."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from campaign_runs.factory import answers
from campaign_runs.factory.answers import ChannelUnavailable
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.channels import BatchOutcome, ChannelAdapter, DeliveryContext, Gate, Pacer
from campaign_runs.factory.dispatch import Dispatcher, DispatchResult
from campaign_runs.factory.ledger import SqliteLedger
from campaign_runs.factory.stop import StopSignal
from campaign_runs.factory.suppression import SuppressionList
from campaign_runs.factory.transports.twilio import TwilioSmsAdapter

from tests.campaign_runs.factory.test_audience import plan
from tests.support.rigs import twilio
from tests.support.rigs.http_server import HttpRig
from tests.support.rigs.twilio import SENDER, TwilioRig


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioRig]:
    """A local Twilio for one test."""
    with twilio.rig(monkeypatch) as running:
        yield running


@pytest.fixture
def suppressions(tmp_path: Path) -> Iterator[SuppressionList]:
    """A suppression list of this test's own."""
    with SuppressionList.sqlite(tmp_path / "suppressions.sqlite") as listed:
        yield listed


class RecordingGate(Gate):
    """Records every pause it is asked for, without waiting; ``on_pause`` and ``on_settle`` act mid-batch."""

    def __init__(
        self, on_pause: Callable[[float], None] | None = None, on_settle: Callable[[int], None] | None = None
    ) -> None:
        self.pauses: list[float] = []
        self.settled = 0
        self.on_pause, self.on_settle = on_pause, on_settle

    def pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        if self.on_pause is not None:
            self.on_pause(seconds)
        return False

    def settle(self, recipient: Recipient, delivered: bool) -> None:
        self.settled += 1
        if self.on_settle is not None:
            self.on_settle(self.settled)


def adapter_for(
    rig: HttpRig, tmp_path: Path, *, run_id: str = "run-1", suppressions: SuppressionList | None = None, **settings: Any
) -> ChannelAdapter:
    """The adapter of ``rig``'s channel and transport, with the rig's settings (``settings`` override them)."""
    context = DeliveryContext(
        campaign="c",
        run_id=run_id,
        channel=rig.channel,
        settings={**rig.settings, **settings},
        sink_dir=tmp_path,
        campaign_values={"campaign_id": "c", "run_id": run_id},
        suppressions=suppressions,
        conn_id=rig.conn_id,
    )
    return ChannelAdapter.for_transport(rig.channel, rig.transport)(context, Pacer(0))


def dispatch(
    tmp_path: Path,
    adapter: ChannelAdapter,
    size: int,
    *,
    state: Callable[[], str] = lambda: "running",
    resend: bool = False,
    suppressions: SuppressionList | None = None,
) -> DispatchResult:
    """Dispatch ``size`` recipients in batches of 10 through ``adapter`` (run id: the adapter's)."""
    run_id = adapter.context.run_id
    ledger = SqliteLedger(tmp_path / "ledger.sqlite", "c", "slot", adapter.context.channel)
    try:
        return Dispatcher(
            plan=plan(size),
            adapter=adapter,
            ledger=ledger,
            batch_size=10,
            run_state=state,
            publish=lambda progress: None,
            run_id=run_id,
            stop=StopSignal(state, interval=0),
            resend_in_doubt=resend,
            suppressions=suppressions,
        ).run()
    finally:
        ledger.close()


def ledger_counts(tmp_path: Path, channel: str, size: int) -> tuple[int, int]:
    """(sent, in doubt) in the test's ledger."""
    with SqliteLedger(tmp_path / "ledger.sqlite", "c", "slot", channel) as ledger:
        counts = ledger.counts(size)
    return counts.sent, counts.in_doubt


def recipients(size: int) -> list[Recipient]:
    """The first ``size`` recipients of the test audience."""
    return list(plan(size).recipients())


def go_away_after(rig: HttpRig, accepted: int) -> Callable[[], str]:
    """A run state that makes ``rig`` go away once it accepted ``accepted`` messages (the run keeps running)."""

    def state() -> str:
        if len(rig.accepted()) >= accepted:
            rig.go_away()
        return "running"

    return state


def test_each_message_is_the_request_twilio_documents(rig: TwilioRig, tmp_path: Path) -> None:
    """POST .../Messages.json, Basic auth with the SID and token, form-encoded To, From, Body; one session per batch."""
    result = dispatch(tmp_path, adapter_for(rig, tmp_path), 25)
    assert (result.sent, result.failed, result.in_doubt) == (25, 0, 0)
    assert rig.accepted() == [r.phone for r in recipients(25)]
    first = rig.sends()[0]
    assert (first.method, first.path) == ("POST", f"/2010-04-01/Accounts/{rig.account_sid}/Messages.json")
    assert first.basic_auth() == (rig.account_sid, rig.auth_token)
    assert first.header("Content-Type") == "application/x-www-form-urlencoded"
    assert rig.form(first) == {"To": recipients(1)[0].phone, "From": SENDER, "Body": "Hi Tess"}
    assert "account_sid" not in first.headers
    assert rig.server.connections == 3  # three batches of at most 10: each over one kept-alive session


def test_messaging_service_and_api_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An API key logs in (extra account_sid names the account); a messaging service replaces From."""
    with twilio.rig(monkeypatch, api_key=True, service=True) as rig:
        result = dispatch(tmp_path, adapter_for(rig, tmp_path), 3)
        assert result.sent == 3
        first = rig.sends()[0]
        assert first.basic_auth() == (rig.key_sid, rig.auth_token)
        assert first.path == f"/2010-04-01/Accounts/{rig.account_sid}/Messages.json"
        assert rig.form(first) == {
            "To": recipients(1)[0].phone,
            "MessagingServiceSid": rig.service_sid,
            "Body": "Hi Tess",
        }


@pytest.mark.parametrize(("retry_after", "waits"), [(3, [3.0, 3.0]), (None, [0.5, 1.0])])
def test_throttled_then_sent(rig: TwilioRig, tmp_path: Path, retry_after: int | None, waits: list[float]) -> None:
    """Twilio's 429 is tried again after its Retry-After (else with backoff); each retry is counted."""
    rig.throttle_next(2, retry_after=retry_after)
    outcome, gate = BatchOutcome(), RecordingGate()
    adapter_for(rig, tmp_path).send_batch(recipients(3), outcome, gate)
    assert (len(outcome.delivered), outcome.retried) == (3, 2)
    assert [seconds for seconds in gate.pauses if seconds > 0] == waits
    assert len(rig.sends()) == 5 and rig.accepted() == [r.phone for r in recipients(3)]


def test_throttled_six_times_stops_the_channel_losing_nobody(rig: TwilioRig, tmp_path: Path) -> None:
    """Six 429s in a row stop the channel (restartable): nothing sent, nobody in doubt; the restart sends all."""
    rig.throttle_next(6, retry_after=0)
    with pytest.raises(ChannelUnavailable, match="Twilio 20429"):
        dispatch(tmp_path, adapter_for(rig, tmp_path), 5)
    assert rig.accepted() == [] and ledger_counts(tmp_path, "sms", 5) == (0, 0)
    assert dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 5).sent == 5
    assert rig.accepted() == [r.phone for r in recipients(5)]


@pytest.mark.parametrize(("code", "bad_address"), [(21211, True), (21614, True), (21610, True), (21408, False)])
def test_refused_for_good(
    rig: TwilioRig, tmp_path: Path, suppressions: SuppressionList, code: int, bad_address: bool
) -> None:
    """A 400 fails that message with Twilio's code and message; 21211, 21614 and 21610 also bounce the address."""
    refused = recipients(3)[1].phone
    rig.refuse_address(refused, code)
    outcome = BatchOutcome()
    adapter = adapter_for(rig, tmp_path, suppressions=suppressions)
    adapter.send_batch(recipients(3), outcome, RecordingGate())
    assert ([r.phone for r in outcome.failed], outcome.retried) == ([refused], 0)
    [(reason, count)] = outcome.reasons.items()
    assert reason.startswith(f"HTTP 400: Twilio {code}: ") and count == 1
    assert suppressions.contains("sms", refused) is bad_address
    if bad_address:
        [entry] = suppressions.entries("sms")
        assert (entry.reason, entry.source) == ("bounced", reason)
    result = dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 3, suppressions=suppressions)
    assert result.suppressed == int(bad_address)  # a bounced number is not tried again


def test_a_body_twilio_refuses_fails_without_bouncing(
    rig: TwilioRig, tmp_path: Path, suppressions: SuppressionList
) -> None:
    """Any other 4xx (here 21617, a body over 1600 characters) fails the message with Twilio's reason, no bounce."""
    result = dispatch(tmp_path, adapter_for(rig, tmp_path, suppressions=suppressions, text="x" * 1601), 2)
    assert (result.sent, result.failed) == (0, 2)
    assert rig.accepted() == [] and suppressions.count() == {}


def test_server_going_away_stops_the_channel_then_nobody_twice(
    rig: TwilioRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio unreachable mid-run: the channel stops (or the message in flight is in doubt); come back, nobody twice."""
    monkeypatch.setattr(answers, "BACKOFF_BASE", 0.001)
    with pytest.raises((ChannelUnavailable, requests.ConnectionError)) as stopped:
        dispatch(tmp_path, adapter_for(rig, tmp_path), 20, state=go_away_after(rig, 7))
    sent, in_doubt = ledger_counts(tmp_path, "sms", 20)
    assert (sent, in_doubt) == (7, 0 if stopped.type is ChannelUnavailable else 1)
    assert len(rig.accepted()) == 7
    rig.come_back()
    result = dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 20)
    assert (result.already_reached, result.sent, result.in_doubt) == (7, 13 - in_doubt, in_doubt)
    assert len(rig.accepted()) == len(set(rig.accepted())) == 20 - in_doubt


def test_server_coming_back_while_waiting_loses_nothing(rig: TwilioRig, tmp_path: Path) -> None:
    """Twilio gone after 3 messages and back during the backoff: the batch goes on, each number once."""
    gate = RecordingGate(
        on_pause=lambda seconds: rig.come_back() if seconds > 0 else None,
        on_settle=lambda settled: rig.go_away() if settled == 3 else None,
    )
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(recipients(6), outcome, gate)
    assert (len(outcome.delivered), outcome.retried) == (6, 1)
    assert rig.accepted() == [r.phone for r in recipients(6)]


def test_read_timeout_is_in_doubt_and_not_sent_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No answer within the Connection's timeout: the message is in doubt (it may have left); the restart skips it."""
    with twilio.rig(monkeypatch) as rig:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_RIG", rig.connection(extra={"timeout": 0.2}))
        rig.slow_down(60)  # the first message's answer never comes (the rig's end drops it)
        with pytest.raises(requests.ReadTimeout) as timed_out:
            dispatch(tmp_path, adapter_for(rig, tmp_path), 5)
        assert rig.auth_token not in str(timed_out.value)
        assert ledger_counts(tmp_path, "sms", 5) == (0, 1)
        rig.slow_down(0)
        result = dispatch(tmp_path, adapter_for(rig, tmp_path, run_id="run-2"), 5)
        assert (result.sent, result.in_doubt) == (4, 1)
        assert rig.accepted() == [r.phone for r in recipients(5)[1:]]


def test_check_fetches_the_account(rig: TwilioRig, tmp_path: Path) -> None:
    """check() fetches the Account with the Connection's credentials and sends nothing."""
    answer = adapter_for(rig, tmp_path).check()
    assert answer == f"twilio: account {rig.account_sid} (Campaign rig) is active"
    [fetch] = rig.seen
    assert (fetch.method, fetch.path) == ("GET", f"/2010-04-01/Accounts/{rig.account_sid}.json")
    assert rig.accepted() == []


def test_check_failures_say_what_and_show_no_secret(
    rig: TwilioRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong token, an API key without account_sid, Twilio gone: clear errors, never the secret."""
    caplog.set_level(logging.DEBUG)
    secret = "wrong-" + rig.auth_token
    messages = []
    monkeypatch.setenv("AIRFLOW_CONN_TWILIO_RIG", rig.connection(password=secret))
    with pytest.raises(PermissionError, match=r"credentials were refused .*HTTP 401, Twilio 20003") as refused:
        adapter_for(rig, tmp_path).check()
    messages.append(str(refused.value))
    monkeypatch.setenv("AIRFLOW_CONN_TWILIO_RIG", rig.connection(login="SK" + "0" * 32, password=secret))
    with pytest.raises(ValueError, match="needs extra account_sid") as no_account:
        adapter_for(rig, tmp_path).check()
    messages.append(str(no_account.value))
    monkeypatch.setenv("AIRFLOW_CONN_TWILIO_RIG", rig.connection(password=secret))
    rig.go_away()
    with pytest.raises(ConnectionError, match=r"unreachable .*[Cc]onnection refused") as unreachable:
        adapter_for(rig, tmp_path).check()
    messages.append(str(unreachable.value))
    assert not [text for text in [*messages, caplog.text] if secret in text or rig.auth_token in text]


def test_no_secret_in_refusals_or_logs(rig: TwilioRig, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Refusals, retries and their logs name Twilio's codes, never the auth token."""
    caplog.set_level(logging.DEBUG)
    rig.throttle_next(1, retry_after=0)
    rig.refuse_address(recipients(2)[1].phone)
    outcome = BatchOutcome()
    adapter_for(rig, tmp_path).send_batch(recipients(2), outcome, RecordingGate())
    assert outcome.retried == 1 and len(outcome.failed) == 1
    assert "Twilio 20429" in caplog.text and "Twilio 21211" in caplog.text
    assert rig.auth_token not in caplog.text + " ".join(outcome.reasons)


def test_adapter_is_registered_and_reads_its_connection(tmp_path: Path) -> None:
    """sms over twilio, Connection twilio_default unless the channel names one."""
    assert ChannelAdapter.for_transport("sms", "twilio") is TwilioSmsAdapter
    context = DeliveryContext("c", "r", "sms", {"text": "t", "sender": "S"}, tmp_path, {})
    assert TwilioSmsAdapter(context, Pacer(0)).conn_id == "twilio_default"


def test_rig_server_stops_what_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaving the rig closes its port and ends every thread it started."""
    before = set(threading.enumerate())
    with twilio.rig(monkeypatch) as rig:
        requests.get(rig.server.url + f"/2010-04-01/Accounts/{rig.account_sid}.json", timeout=5)
        port = rig.server.port
    assert set(threading.enumerate()) <= before
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
