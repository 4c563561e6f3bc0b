"""SMS over Amazon SNS: the real adapter and boto3 client, driven by the dispatcher, against moto behind a front.

The front (``tests.support.moto_server.AwsFront``) checks each ``Publish`` as SNS does (signature, E.164 number,
text, SMS attributes) and answers SNS's own throttling and refusals; what was accepted is what moto's SNS stored.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.factory.channels import Pacer, render
from campaign_runs.factory.suppression import SuppressionList
from campaign_runs.factory.transports.sns import SnsSmsAdapter, sns_bad_address

from tests.campaign_runs.factory.transports.test_ses import (
    context,
    dispatch,
    gone_between_messages,
    gone_in_flight,
    outcome_of,
    people,
    provider_error,
    suppressions,
    throttled_then_sent,
    without_credentials,
)
from tests.support.moto_server import aws_connection
from tests.support.rigs.sns import SnsRig, attributes, rig

__all__ = ["suppressions"]  # a fixture of these tests too


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[SnsRig]:
    """The SNS rig."""
    with rig(monkeypatch) as front:
        yield front


def test_each_recipient_gets_one_publish_with_the_sms_attributes(tmp_path: Path, sns: SnsRig) -> None:
    """``Publish`` to the number with the rendered text, the sender ID and the SMS type; no topic."""
    adapter = SnsSmsAdapter(context(tmp_path, sns), Pacer(0))
    result = dispatch(tmp_path, adapter, 3)
    assert (result.sent, result.failed, result.in_doubt) == (3, 0, 0)
    everyone = people(3)
    texts = [render(sns.settings["text"], recipient.fields()) for recipient in everyone]
    assert sns.accepted() == [recipient.phone for recipient in everyone]
    assert (
        [sms["message"] for sms in sns.stored()]
        == texts
        == [f"Hi {r.fields()['first_name']}, news from us" for r in everyone]
    )
    assert sns.problems == []
    for fields, recipient, text in zip(sns.sends, everyone, texts, strict=True):
        assert (fields["Action"], fields["PhoneNumber"], fields["Message"]) == ("Publish", recipient.phone, text)
        assert "TopicArn" not in fields and "TargetArn" not in fields
        assert attributes(fields) == {
            "AWS.SNS.SMS.SenderID": ("String", "EXAMPLE"),
            "AWS.SNS.SMS.SMSType": ("String", "Transactional"),
        }


def test_sms_type_and_sender_are_checked_when_the_adapter_is_built(tmp_path: Path, sns: SnsRig) -> None:
    """``Promotional`` goes as the SMS type; a type or a sender ID SNS would not take is refused up front."""
    adapter = SnsSmsAdapter(context(tmp_path, sns, sms_type="Promotional", sender="Shop24"), Pacer(0))
    assert dispatch(tmp_path, adapter, 1).sent == 1
    assert attributes(sns.sends[0]) == {
        "AWS.SNS.SMS.SenderID": ("String", "Shop24"),
        "AWS.SNS.SMS.SMSType": ("String", "Promotional"),
    }
    with pytest.raises(
        ValueError, match=r"^channels\.sms\.sms_type: must be Transactional or Promotional, got 'urgent'$"
    ):
        SnsSmsAdapter(context(tmp_path, sns, sms_type="urgent"), Pacer(0))
    for sender in ("TWELVE-CHARS", "123456", "with space"):
        with pytest.raises(ValueError, match=r"^channels\.sms\.sender: an SNS sender ID is 1 to 11 letters and digits"):
            SnsSmsAdapter(context(tmp_path, sns, sender=sender), Pacer(0))


def test_throttling_is_waited_out_and_counted(tmp_path: Path, sns: SnsRig) -> None:
    """SNS ``Throttling`` (HTTP 400): tried again after ``Retry-After`` or backoff; nobody twice."""
    adapter = SnsSmsAdapter(context(tmp_path, sns), Pacer(0))
    throttled_then_sent(tmp_path, sns, adapter, [recipient.phone for recipient in people(4)])


def test_a_refused_number_fails_and_bounces(
    tmp_path: Path, sns: SnsRig, suppressions: SuppressionList, caplog: pytest.LogCaptureFixture
) -> None:
    """``InvalidParameter`` about the phone number: that SMS fails with SNS's reason, the number bounces."""
    caplog.set_level(logging.INFO)
    everyone = people(4)
    sns.refuse_address(everyone[2].phone)
    adapter = SnsSmsAdapter(context(tmp_path, sns, suppressions), Pacer(0))
    result = dispatch(tmp_path, adapter, 4, suppressions=suppressions)
    assert (result.sent, result.failed, result.in_doubt) == (3, 1, 0)
    assert sns.accepted() == [everyone[0].phone, everyone[1].phone, everyone[3].phone]
    [entry] = suppressions.entries("sms")
    reason = f"SNS InvalidParameter: Invalid parameter: PhoneNumber Reason: {everyone[2].phone} is not valid"
    assert (entry.address, entry.reason, entry.source) == (everyone[2].phone, "bounced", reason)
    assert f"refused {everyone[2].id}: {reason}" in caplog.text
    assert sns.secret not in caplog.text


def test_a_refused_text_fails_without_bouncing_the_number(
    tmp_path: Path, sns: SnsRig, suppressions: SuppressionList, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty text: SNS's ``InvalidParameter`` is about the message, so the number stays off the list."""
    caplog.set_level(logging.INFO)
    empty = dataclasses.replace(context(tmp_path, sns, suppressions, text="$nothing"), campaign_values={"nothing": ""})
    adapter = SnsSmsAdapter(empty, Pacer(0))
    result = dispatch(tmp_path, adapter, 2, suppressions=suppressions)
    assert (result.sent, result.failed, result.in_doubt) == (0, 2, 0)
    assert (sns.accepted(), suppressions.count()) == ([], {})
    assert "SNS InvalidParameter: Invalid parameter: Message Reason: Empty message" in caplog.text
    assert sns.problems == ["InvalidParameter: Invalid parameter: Message Reason: Empty message"] * 2


def test_gone_between_messages_stops_the_channel_and_loses_nothing(tmp_path: Path, sns: SnsRig) -> None:
    """Connections refused: six tries, ``ChannelUnavailable``, nothing in doubt; the restart sends the rest once."""
    adapter = SnsSmsAdapter(context(tmp_path, sns), Pacer(0))
    gone_between_messages(tmp_path, sns, adapter, [recipient.phone for recipient in people(8)])


def test_gone_while_a_message_waits_for_its_answer_leaves_it_in_doubt(tmp_path: Path, sns: SnsRig) -> None:
    """The connection closes before SNS answers: that recipient is in doubt and is not sent again."""
    adapter = SnsSmsAdapter(context(tmp_path, sns), Pacer(0))
    gone_in_flight(tmp_path, sns, adapter, [recipient.phone for recipient in people(6)])


def test_no_credentials_fails_before_anyone_is_claimed(
    tmp_path: Path, sns: SnsRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Connection with no login or password, and no AWS settings on the machine: ``check`` and sending fail."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{sns.conn_id.upper()}", aws_connection(sns.endpoint, login="", password=""))
    without_credentials(tmp_path, sns, SnsSmsAdapter(context(tmp_path, sns), Pacer(0)))


@pytest.mark.parametrize(
    ("code", "status", "message", "answer", "detail"),
    [
        ("Throttling", 400, "Rate exceeded", "for now", None),
        ("Throttled", 429, "Rate exceeded", "for now", None),
        ("KMSThrottling", 400, "KMS throttled the request", "for now", None),
        ("InternalError", 500, "Internal error", "for now", None),
        (
            "InvalidParameter",
            400,
            "Invalid parameter: PhoneNumber Reason: +1555 is not valid to publish to",
            "refused",
            True,
        ),
        ("ParameterValueInvalid", 400, "Invalid parameter: Phone number is not valid", "refused", True),
        ("InvalidParameter", 400, "Invalid parameter: MessageAttributes Reason: SenderID", "refused", False),
        ("AuthorizationError", 403, "User is not authorized to perform: SNS:Publish", "refused", False),
        ("KMSAccessDenied", 400, "Access to the KMS key was denied", "refused", False),
    ],
)
def test_sns_answers_by_code(code: str, status: int, message: str, answer: str, detail: object) -> None:
    """Throttling and the service's failures are for now; only an invalid phone number bounces."""
    reason = f"AWS {code}: {message}"
    assert outcome_of(provider_error(code, status, message), sns_bad_address) == (answer, reason, detail)


def test_check_sends_nothing_and_fails_clearly_without_the_secret(
    tmp_path: Path, sns: SnsRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``check()``: the account's SMS attributes; a wrong secret or no server fails on one line, no secret in it."""
    caplog.set_level(logging.DEBUG)
    adapter = SnsSmsAdapter(context(tmp_path, sns), Pacer(0))
    assert adapter.check() == (
        "sns (us-east-1): connected; account default SMS type not set, monthly spend limit (USD) not set"
    )
    assert (sns.sends, sns.accepted(), sns.problems) == ([], [], [])
    wrong_secret = "wrong-" + secrets.token_urlsafe(18)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_SNS_WRONG", aws_connection(sns.endpoint, login=sns.access_key, password=wrong_secret)
    )
    wrong = SnsSmsAdapter(context(tmp_path, sns, conn_id="aws_sns_wrong"), Pacer(0))
    signature = r"^sns: An error occurred \(SignatureDoesNotMatch\) when calling the GetSMSAttributes operation: "
    with pytest.raises(RuntimeError, match=signature) as bad:
        wrong.check()
    assert [problem.split(":")[0] for problem in sns.problems] == ["SignatureDoesNotMatch"]
    sns.go_away()
    with pytest.raises(
        RuntimeError, match=r'^sns: Could not connect to the endpoint URL: "http://127\.0\.0\.1:'
    ) as gone:
        adapter.check()
    for secret in (sns.secret, wrong_secret):
        assert secret not in caplog.text + str(bad.value) + str(gone.value)
