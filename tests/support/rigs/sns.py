"""Amazon SNS rig: moto's SNS behind ``AwsFront``, which checks each SMS ``Publish`` and answers SNS's own errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from tests.support.moto_server import AwsApi, AwsFront, moto_data, shared_moto_server, use_connection
from tests.support.rigs.smtp import Remote

CONN_ID = "aws_sns_rig"
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
SMS_ATTRIBUTES = {
    "AWS.SNS.SMS.SMSType": re.compile(r"Transactional|Promotional"),
    "AWS.SNS.SMS.SenderID": re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,11}"),
}


def attributes(fields: dict[str, str]) -> dict[str, tuple[str, str]]:
    """A ``Publish`` request's message attributes: name -> (data type, string value)."""
    found: dict[str, tuple[str, str]] = {}
    for key, name in fields.items():
        if (entry := re.fullmatch(r"MessageAttributes\.entry\.(\d+)\.Name", key)) is not None:
            prefix = f"MessageAttributes.entry.{entry[1]}.Value."
            found[name] = (fields.get(prefix + "DataType", ""), fields.get(prefix + "StringValue", ""))
    return found


def send_problem(fields: dict[str, str]) -> str | None:
    """What SNS would refuse in an SMS ``Publish``: the number, the text, the SMS attributes."""
    if "TopicArn" in fields or "TargetArn" in fields or not E164.fullmatch(fields.get("PhoneNumber", "")):
        return "Invalid parameter: PhoneNumber Reason: an SMS goes to one E.164 number, and to no topic"
    if not fields.get("Message"):
        return "Invalid parameter: Message Reason: Empty message"
    for name, (data_type, value) in attributes(fields).items():
        pattern = SMS_ATTRIBUTES.get(name)
        if data_type != "String" or pattern is None or not pattern.fullmatch(value):
            return f"Invalid parameter: MessageAttributes Reason: {name} {data_type} {value!r}"
    return None


API = AwsApi(
    service="sns",
    version="2010-03-31",
    send_action="Publish",
    address_field="PhoneNumber",
    throttling=("Throttling", "Rate exceeded"),
    refusal=lambda number: ("InvalidParameter", f"Invalid parameter: PhoneNumber Reason: {number} is not valid"),
    invalid="InvalidParameter",
    send_problem=send_problem,
)


class SnsRig(AwsFront):
    """SMS over SNS: what moto's SNS stored, and each ``Publish`` request the front saw."""

    api = API
    channel = "sms"
    transport = "sns"
    conn_id = CONN_ID
    settings: ClassVar[dict[str, Any]] = {
        "text": "Hi $first_name, news from us",
        "sender": "EXAMPLE",
        "sms_type": "Transactional",
    }

    def stored(self) -> list[dict[str, Any]]:
        """The SMS moto's SNS accepted, in order (``phone_number``, ``message``, ``message_id``)."""
        sms: list[dict[str, Any]] = moto_data(self.upstream).get("sns", {}).get("SMS", [])
        return sms

    def accepted(self) -> list[str]:
        """The number of each SMS moto's SNS accepted, in order, duplicates kept."""
        return [sms["phone_number"] for sms in self.stored()]


def remote() -> Remote:
    """This rig as seen from another process (its Connection is in the environment)."""
    return Remote(SnsRig.channel, SnsRig.transport, CONN_ID, dict(SnsRig.settings))


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[SnsRig]:
    """moto's server, the front before it, and Connection ``aws_sns_rig``."""
    with shared_moto_server() as upstream, SnsRig(upstream) as front:
        use_connection(monkeypatch, CONN_ID, front)
        yield front
