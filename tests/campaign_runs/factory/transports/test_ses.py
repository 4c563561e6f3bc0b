"""Email over Amazon SES: the real adapter and boto3 client, driven by the dispatcher, against moto behind a front.

The front (``tests.support.moto_server.AwsFront``) checks each request's signature and fields as SES does and
answers SES's own throttling and refusals; what was accepted is what moto's SES stored.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory.answers import ChannelUnavailable, Refused, Transient
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.channels import BatchOutcome, ChannelAdapter, DeliveryContext, Gate, Pacer
from campaign_runs.factory.dispatch import Dispatcher, DispatchResult
from campaign_runs.factory.ledger import LedgerCounts, SqliteLedger
from campaign_runs.factory.stop import StopSignal
from campaign_runs.factory.suppression import SuppressionList, open_suppressions
from campaign_runs.factory.transports.ses import SesEmailAdapter, deliver, ses_bad_address
from campaign_runs.factory.unsubscribe import unsubscribe_token

from tests.campaign_runs.factory.test_audience import plan
from tests.support.moto_server import AwsFront, aws_connection, use_connection
from tests.support.rigs.ses import SENDER, SesRig, rig

MESSAGE_ID = re.compile(r"^(Message-ID|Date): .*\r\n", re.MULTILINE)  # per message: its id and its second
SMTP_MAIL_FROM = "campaign-runs@example.com"  # [smtp] smtp_mail_from of the test environment


class Waits(StopSignal):
    """Asks ``state`` before each message; records each wait the sender asks for, and waits none of it."""

    def __init__(self, state: Callable[[], str] = lambda: "running") -> None:
        super().__init__(state, interval=0)
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> bool:
        """Record ``seconds`` (a pacing wait of 0 is not one) and only check for a stop."""
        if seconds > 0:
            self.waits.append(seconds)
        return self.stopped()


class Pauses(Gate):
    """A gate recording the waits between tries, waiting none of them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def pause(self, seconds: float) -> bool:
        """Record ``seconds`` (a pacing wait of 0 is not one)."""
        if seconds > 0:
            self.pauses.append(seconds)
        return False


def people(size: int) -> list[Recipient]:
    """The first ``size`` recipients of the test audience."""
    return list(plan(size).recipients())


def context(
    tmp_path: Path, front: Any, suppressions: SuppressionList | None = None, conn_id: str = "", **settings: str
) -> DeliveryContext:
    """The delivery context of a campaign ``c`` sending on the rig's channel through its Connection."""
    merged = {**front.settings, **settings}
    return DeliveryContext("c", "run-1", front.channel, merged, tmp_path, {}, suppressions, conn_id or front.conn_id)


def dispatch(
    tmp_path: Path,
    adapter: ChannelAdapter,
    size: int,
    *,
    run_id: str = "run-1",
    stop: StopSignal | None = None,
    suppressions: SuppressionList | None = None,
) -> DispatchResult:
    """Send to the first ``size`` recipients in batches of 10, one connection, with the ledger under ``tmp_path``."""
    stop = stop or Waits()
    ledger = SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", adapter.context.channel)
    try:
        return Dispatcher(
            plan=plan(size),
            adapter=adapter,
            ledger=ledger,
            batch_size=10,
            run_state=stop.run_state,
            publish=lambda _: None,
            run_id=run_id,
            stop=stop,
            suppressions=suppressions,
        ).run()
    finally:
        ledger.close()


def counts(tmp_path: Path, channel: str, size: int) -> LedgerCounts:
    """What the ledger says was sent and is in doubt."""
    ledger = SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", channel)
    try:
        return ledger.counts(size)
    finally:
        ledger.close()


def without_credentials(tmp_path: Path, front: AwsFront, adapter: ChannelAdapter) -> None:
    """A Connection giving no credentials (none on the machine either): nothing is claimed, one clear error."""
    service = front.transport
    with pytest.raises(RuntimeError, match=rf"^{service}: no AWS credentials for Connection '{front.conn_id}' \("):
        adapter.check()
    with pytest.raises(RuntimeError, match=rf"^{service}: no AWS credentials for Connection '{front.conn_id}' \("):
        dispatch(tmp_path, adapter, 3)
    ledger = counts(tmp_path, front.channel, 3)
    assert (ledger.sent, ledger.in_doubt, front.sends, front.accepted()) == (0, 0, [], [])


def throttled_then_sent(tmp_path: Path, front: AwsFront, adapter: ChannelAdapter, addresses: list[str]) -> None:
    """Throttled twice with ``Retry-After: 3``: both waits are 3 s, then everyone is sent once; without it, backoff."""
    front.throttle_next(2, retry_after=3)
    stop = Waits()
    result = dispatch(tmp_path, adapter, len(addresses), stop=stop)
    assert (result.sent, result.failed, result.in_doubt) == (len(addresses), 0, 0)
    assert stop.waits == [3.0, 3.0]
    assert (front.throttled, len(front.sends)) == (2, len(addresses) + 2)
    assert front.accepted() == addresses
    front.throttle_next(2)
    outcome, gate = BatchOutcome(), Pauses()
    adapter.send_batch(people(1), outcome, gate)
    assert (len(outcome.delivered), outcome.retried, gate.pauses) == (1, 2, [0.5, 1.0])
    assert front.problems == []


def gone_between_messages(tmp_path: Path, front: AwsFront, adapter: ChannelAdapter, addresses: list[str]) -> None:
    """Gone after 3 messages: 6 tries refused, the channel stops, nothing in doubt; after it is back, the rest."""

    def state() -> str:
        if len(front.sends) == 3 and not front.gone.is_set():
            front.go_away()
        return "running"

    stop = Waits(state)
    with pytest.raises(ChannelUnavailable, match=r"refused a message 6 times in a row \(last: \w+ unreachable: "):
        dispatch(tmp_path, adapter, len(addresses), stop=stop)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert (counts(tmp_path, front.channel, len(addresses)).sent, front.accepted()) == (3, addresses[:3])
    front.come_back()
    result = dispatch(tmp_path, adapter, len(addresses), run_id="run-2")
    assert (result.already_reached, result.sent, result.in_doubt) == (3, len(addresses) - 3, 0)
    assert front.accepted() == addresses


def gone_in_flight(tmp_path: Path, front: AwsFront, adapter: ChannelAdapter, addresses: list[str]) -> None:
    """Gone while the third message waits for its answer: that one is in doubt, and never sent again."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    def state() -> str:
        if len(front.sends) == 2:
            front.slow_down(30)
        return "running"

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(dispatch, tmp_path, adapter, len(addresses), stop=Waits(state))
        assert front.wait_for_sends(3)
        front.go_away()
        with pytest.raises((ConnectionClosedError, ReadTimeoutError)):  # not a refusal: the outcome is unknown
            running.result(timeout=120)
    ledger = counts(tmp_path, front.channel, len(addresses))
    assert (ledger.sent, ledger.in_doubt) == (2, 1)
    front.slow_down(0)
    front.come_back()
    result = dispatch(tmp_path, adapter, len(addresses), run_id="run-2")
    assert (result.already_reached, result.in_doubt, result.sent) == (2, 1, len(addresses) - 3)
    assert front.accepted() == addresses[:2] + addresses[3:]


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[SesRig]:
    """The SES rig, unsubscribe links on https."""
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__BASE_URL", "https://campaigns.example.org/")
    with rig(monkeypatch) as front:
        yield front


@pytest.fixture
def suppressions(tmp_path: Path) -> Iterator[SuppressionList]:
    """The suppression list under ``tmp_path``."""
    with open_suppressions(sink_dir=tmp_path) as listed:
        yield listed


def test_each_recipient_gets_the_smtp_message_raw_and_alone(tmp_path: Path, ses: SesRig) -> None:
    """``SendRawEmail`` per recipient: the sender from the Connection, one destination, the SMTP path's bytes."""
    adapter = SesEmailAdapter(context(tmp_path, ses), Pacer(0))
    result = dispatch(tmp_path, adapter, 3)
    assert (result.sent, result.failed, result.in_doubt) == (3, 0, 0)
    everyone = people(3)
    assert ses.accepted() == [recipient.email for recipient in everyone]
    assert ses.problems == []
    assert [(fields["Source"], fields["Destinations.member.1"]) for fields in ses.sends] == [
        (SENDER, recipient.email) for recipient in everyone
    ]
    assert not any("ConfigurationSetName" in fields or "Destinations.member.2" in fields for fields in ses.sends)
    for recipient, stored in zip(everyone, ses.stored(), strict=True):
        assert stored["source"] == SENDER
        built = adapter.message_bytes(recipient).decode()  # what the SMTP transport sends (its own Message-ID)
        assert MESSAGE_ID.sub("", stored["raw_data"]) == MESSAGE_ID.sub("", built)
        message = email.message_from_string(stored["raw_data"], policy=email.policy.default)
        token = unsubscribe_token(recipient.email, "c")
        url = f"https://campaigns.example.org/campaign-runs/unsubscribe/{token}"
        mailto = f"mailto:{SMTP_MAIL_FROM}?subject=unsubscribe%20{token}"
        assert message["List-Unsubscribe"] == f"<{url}>, <{mailto}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        subject = f"News for {recipient.fields()['first_name']}"
        assert (message["From"], message["To"], message["Subject"]) == (SENDER, recipient.email, subject)
        assert message["X-Campaign-Recipient"] == recipient.id
        assert message["Date"].datetime.utcoffset() == timedelta(0)  # RFC 5322 Date, as over SMTP
        assert abs((datetime.now(UTC) - message["Date"].datetime).total_seconds()) < 60
        assert url in message.get_content()


def test_a_configuration_set_is_named_and_checked(tmp_path: Path, ses: SesRig) -> None:
    """``configuration_set`` goes with every message; a name SES cannot take stops the adapter being built."""
    adapter = SesEmailAdapter(context(tmp_path, ses, configuration_set="campaign-events_1"), Pacer(0))
    assert dispatch(tmp_path, adapter, 2).sent == 2
    assert [fields.get("ConfigurationSetName") for fields in ses.sends] == ["campaign-events_1"] * 2
    pattern = r"^channels\.email\.configuration_set: 'no spaces' is not an SES configuration set name$"
    with pytest.raises(ValueError, match=pattern):
        SesEmailAdapter(context(tmp_path, ses, configuration_set="no spaces"), Pacer(0))


def test_throttling_is_waited_out_and_counted(tmp_path: Path, ses: SesRig) -> None:
    """SES ``Throttling`` (HTTP 400): tried again after ``Retry-After`` or backoff; nobody twice."""
    adapter = SesEmailAdapter(context(tmp_path, ses), Pacer(0))
    throttled_then_sent(tmp_path, ses, adapter, [recipient.email for recipient in people(4)])


def test_a_refused_address_fails_and_bounces(
    tmp_path: Path, ses: SesRig, suppressions: SuppressionList, caplog: pytest.LogCaptureFixture
) -> None:
    """``MessageRejected: Address blacklisted.``: that message fails with SES's reason, the address bounces."""
    caplog.set_level(logging.INFO)
    everyone = people(4)
    ses.refuse_address(everyone[1].email)
    adapter = SesEmailAdapter(context(tmp_path, ses, suppressions), Pacer(0))
    result = dispatch(tmp_path, adapter, 4, suppressions=suppressions)
    assert (result.sent, result.failed, result.in_doubt) == (3, 1, 0)
    assert ses.accepted() == [everyone[0].email, everyone[2].email, everyone[3].email]
    [entry] = suppressions.entries("email")
    reason = "SES MessageRejected: Address blacklisted."
    assert (entry.address, entry.reason, entry.source) == (everyone[1].email, "bounced", reason)
    assert f"refused {everyone[1].id}: {reason}" in caplog.text
    assert ses.secret not in caplog.text


def test_a_refused_sender_fails_without_bouncing_anyone(
    tmp_path: Path,
    ses: SesRig,
    suppressions: SuppressionList,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No ``mail_from`` in the Connection: ``[smtp] smtp_mail_from`` sends; SES refuses it, no address bounces."""
    caplog.set_level(logging.INFO)
    use_connection(monkeypatch, "aws_ses_unverified", ses)
    adapter = SesEmailAdapter(context(tmp_path, ses, suppressions, conn_id="aws_ses_unverified"), Pacer(0))
    result = dispatch(tmp_path, adapter, 2, suppressions=suppressions)
    assert (result.sent, result.failed, result.in_doubt) == (0, 2, 0)
    assert [fields["Source"] for fields in ses.sends] == [SMTP_MAIL_FROM] * 2
    assert (ses.accepted(), suppressions.count(), ses.problems) == ([], {}, [])
    assert f"SES MessageRejected: Did not have authority to send from email {SMTP_MAIL_FROM}" in caplog.text
    assert ses.secret not in caplog.text


def test_gone_between_messages_stops_the_channel_and_loses_nothing(tmp_path: Path, ses: SesRig) -> None:
    """Connections refused: six tries, ``ChannelUnavailable``, nothing in doubt; the restart sends the rest once."""
    adapter = SesEmailAdapter(context(tmp_path, ses), Pacer(0))
    gone_between_messages(tmp_path, ses, adapter, [recipient.email for recipient in people(8)])


def test_gone_while_a_message_waits_for_its_answer_leaves_it_in_doubt(tmp_path: Path, ses: SesRig) -> None:
    """The connection closes before SES answers: that recipient is in doubt and is not sent again."""
    adapter = SesEmailAdapter(context(tmp_path, ses), Pacer(0))
    gone_in_flight(tmp_path, ses, adapter, [recipient.email for recipient in people(6)])


def test_no_credentials_fails_before_anyone_is_claimed(
    tmp_path: Path, ses: SesRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Connection with no login or password, and no AWS settings on the machine: ``check`` and sending fail."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{ses.conn_id.upper()}", aws_connection(ses.endpoint, login="", password=""))
    without_credentials(tmp_path, ses, SesEmailAdapter(context(tmp_path, ses), Pacer(0)))


def provider_error(code: str, status: int, message: str, retry_after: str | None = None) -> Exception:
    """botocore's ``ClientError`` for an AWS error answer."""
    from botocore.exceptions import ClientError

    headers = {} if retry_after is None else {"retry-after": retry_after}
    metadata = {"HTTPStatusCode": status, "HTTPHeaders": headers}
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}, "SendRawEmail")


def outcome_of(error: Exception, bad_address: Callable[[str, str], bool]) -> tuple[str, str, object]:
    """(answer, reason, bad address or Retry-After) of ``deliver`` when the call raises ``error``."""

    def send() -> None:
        raise error

    try:
        deliver("AWS", send, bad_address)
    except Refused as refused:
        return "refused", refused.reason, refused.bad_address
    except Transient as transient:
        return "for now", transient.reason, transient.retry_after
    raise AssertionError("deliver answered")


@pytest.mark.parametrize(
    ("code", "status", "message", "answer", "detail"),
    [
        ("Throttling", 400, "Maximum sending rate exceeded.", "for now", None),
        ("Throttling", 400, "Daily message quota exceeded.", "for now", None),
        ("ThrottlingException", 400, "Rate exceeded", "for now", None),
        ("TooManyRequestsException", 429, "Too many requests", "for now", 7.0),
        ("ServiceUnavailable", 503, "Service is unavailable", "for now", None),
        ("InternalFailure", 500, "Internal failure", "for now", None),
        ("502", 502, "", "for now", None),  # a gateway's answer, no AWS error in it
        ("MessageRejected", 400, "Address blacklisted.", "refused", True),
        ("MessageRejected", 400, "Email address is not verified. The following identities failed", "refused", False),
        ("MailFromDomainNotVerifiedException", 400, "MAIL FROM domain not verified", "refused", False),
        ("AccountSendingPausedException", 400, "Account sending paused.", "refused", False),
        ("ConfigurationSetDoesNotExist", 400, "Configuration set <x> does not exist.", "refused", False),
        ("InvalidParameterValue", 400, "Missing final '@domain'", "refused", False),
        ("AccessDenied", 403, "User is not authorized to perform `ses:SendRawEmail'", "refused", False),
    ],
)
def test_ses_answers_by_code(code: str, status: int, message: str, answer: str, detail: object) -> None:
    """Throttling and the service's failures are for now (``Retry-After`` kept); only a refused address bounces."""
    retry_after = "7" if detail == 7.0 else None
    reason = f"AWS {code}: {message}" if message else f"AWS {code}"
    assert outcome_of(provider_error(code, status, message, retry_after), ses_bad_address) == (answer, reason, detail)


def test_no_answer_is_for_now_and_a_lost_answer_is_in_doubt() -> None:
    """No connection or no credentials: for now; a request the client refused: for good; a lost answer: raised."""
    from botocore import exceptions as aws

    url = "https://email.us-east-1.amazonaws.com/"
    unreachable = f'AWS unreachable: Could not connect to the endpoint URL: "{url}"'
    assert outcome_of(aws.EndpointConnectionError(endpoint_url=url), ses_bad_address) == ("for now", unreachable, None)
    timeout = f'AWS unreachable: Connect timeout on endpoint URL: "{url}"'
    assert outcome_of(aws.ConnectTimeoutError(endpoint_url=url), ses_bad_address) == ("for now", timeout, None)
    no_credentials = ("for now", "AWS: Unable to locate credentials", None)
    assert outcome_of(aws.NoCredentialsError(), ses_bad_address) == no_credentials
    invalid = aws.ParamValidationError(report="Invalid type for parameter Source")
    assert outcome_of(invalid, ses_bad_address) == (
        "refused",
        "AWS: Parameter validation failed: Invalid type for parameter Source",
        False,
    )
    for lost in (aws.ReadTimeoutError(endpoint_url=url), aws.ConnectionClosedError(endpoint_url=url)):
        with pytest.raises(type(lost)):
            outcome_of(lost, ses_bad_address)


def test_check_sends_nothing_and_fails_clearly_without_the_secret(
    tmp_path: Path, ses: SesRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``check()``: SES's send quota; a wrong secret or no server fails on one line, no secret in it."""
    caplog.set_level(logging.DEBUG)
    adapter = SesEmailAdapter(context(tmp_path, ses), Pacer(0))
    assert adapter.check() == (
        f"ses (us-east-1): connected; 0 of 200 messages sent in the last 24 hours, at most 1 a second; sender {SENDER}"
    )
    assert (ses.sends, ses.accepted(), ses.problems) == ([], [], [])
    wrong_secret = "wrong-" + secrets.token_urlsafe(18)
    connection = aws_connection(ses.endpoint, login=ses.access_key, password=wrong_secret, mail_from=SENDER)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_SES_WRONG", connection)
    wrong = SesEmailAdapter(context(tmp_path, ses, conn_id="aws_ses_wrong"), Pacer(0))
    signature = r"^ses: An error occurred \(SignatureDoesNotMatch\) when calling the GetSendQuota operation: "
    with pytest.raises(RuntimeError, match=signature) as bad:
        wrong.check()
    assert [problem.split(":")[0] for problem in ses.problems] == ["SignatureDoesNotMatch"]
    ses.go_away()
    unreachable = r'^ses: Could not connect to the endpoint URL: "http://127\.0\.0\.1:'
    with pytest.raises(RuntimeError, match=unreachable) as gone:
        adapter.check()
    for secret in (ses.secret, wrong_secret):
        assert secret not in caplog.text + str(bad.value) + str(gone.value)
