"""Amazon SES rig: moto's SES behind ``AwsFront``, which checks ``SendRawEmail`` and answers SES's own errors."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from tests.support.moto_server import CREDENTIALS, AwsApi, AwsFront, moto_data, shared_moto_server, use_connection
from tests.support.rigs.smtp import Remote

CONN_ID = "aws_ses_rig"
SENDER = "news@example.org"  # verified in moto: SES sends only from verified identities


def send_problem(fields: dict[str, str]) -> str | None:
    """What SES would refuse in a ``SendRawEmail`` of one campaign message: a sender, one destination, a message."""
    if not fields.get("Source"):
        return "Source is required"  # whether SES may send from it is moto's to say (MessageRejected)
    destinations = [key for key in fields if key.startswith("Destinations.member.")]
    if destinations != ["Destinations.member.1"]:
        return f"one destination per message, got {len(destinations)}"
    try:
        raw = base64.b64decode(fields.get("RawMessage.Data", ""), validate=True)
    except binascii.Error:
        return "RawMessage.Data is not base64"
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not raw or message["To"] != fields["Destinations.member.1"] or not message["From"]:
        return "RawMessage.Data must be a whole message, From its sender and To its one destination"
    return None


API = AwsApi(
    service="ses",
    version="2010-12-01",
    send_action="SendRawEmail",
    address_field="Destinations.member.1",
    throttling=("Throttling", "Maximum sending rate exceeded."),
    refusal=lambda address: ("MessageRejected", "Address blacklisted."),  # SES's answer for a suppressed address
    invalid="InvalidParameterValue",
    send_problem=send_problem,
)


class SesRig(AwsFront):
    """Email over SES: what moto's SES stored, and each ``SendRawEmail`` request the front saw."""

    api = API
    channel = "email"
    transport = "ses"
    conn_id = CONN_ID
    settings: ClassVar[dict[str, Any]] = {
        "subject": "News for $first_name",
        "body": "Hello $first_name,\nour news.\nUnsubscribe: $unsubscribe_url\n",
    }

    def stored(self) -> list[dict[str, Any]]:
        """The raw messages moto's SES accepted, in order (``source``, ``destinations``, ``raw_data``)."""
        messages: list[dict[str, Any]] = moto_data(self.upstream).get("ses", {}).get("RawMessage", [])
        return messages

    def accepted(self) -> list[str]:
        """The destination of each message moto's SES accepted, in order, duplicates kept."""
        return [message["destinations"][0] for message in self.stored()]  # moto adds the To header's after it


def remote() -> Remote:
    """This rig as seen from another process (its Connection is in the environment)."""
    return Remote(SesRig.channel, SesRig.transport, CONN_ID, dict(SesRig.settings))


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[SesRig]:
    """moto's server with ``news@example.org`` verified, the front before it, and Connection ``aws_ses_rig``."""
    import boto3

    with shared_moto_server() as upstream, SesRig(upstream) as front:
        boto3.client("ses", endpoint_url=upstream, **CREDENTIALS).verify_email_identity(EmailAddress=SENDER)
        use_connection(monkeypatch, CONN_ID, front, mail_from=SENDER)
        yield front
