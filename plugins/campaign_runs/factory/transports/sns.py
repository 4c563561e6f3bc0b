"""SMS through Amazon SNS (the Amazon provider's ``SnsHook``): ``publish`` to the recipient's phone number."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.transports.dry_run import SmsAdapter
from campaign_runs.factory.transports.ses import AWS_CONN_ID, AwsClients, checked, deliver

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient
    from campaign_runs.factory.channels import DeliveryContext, Pacer

SMS_TYPES = ("Transactional", "Promotional")
SENDER_ID = re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,11}")  # SNS: 1 to 11 alphanumerics, one a letter
INVALID_PARAMETER = frozenset({"InvalidParameter", "InvalidParameterValue", "ParameterValueInvalid"})


def sns_bad_address(code: str, message: str) -> bool:
    """Whether SNS refused the phone number itself (an invalid parameter about the number)."""
    return code in INVALID_PARAMETER and "phonenumber" in message.lower().replace(" ", "")


class SnsSmsAdapter(SmsAdapter):
    """Sends each SMS with SNS ``Publish`` to the recipient's number, with the sender ID and SMS type."""

    transport = "sns"
    default_conn_id = AWS_CONN_ID
    transport_settings: ClassVar[dict[str, Any]] = {"sms_type": "Transactional"}
    one_line_settings = SmsAdapter.one_line_settings | {"sms_type"}

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError("<setting>: <why>")`` when the SMS type or the sender is not one SNS takes."""
        sms_type = settings.get("sms_type") or cls.transport_settings["sms_type"]
        if sms_type not in SMS_TYPES:
            raise ValueError(f"sms_type: must be {' or '.join(SMS_TYPES)}, got {str(sms_type)[:40]!r}")
        sender = settings.get("sender") or ""
        if sender and not SENDER_ID.fullmatch(str(sender)):
            shown = str(sender)[:40]
            raise ValueError(f"sender: an SNS sender ID is 1 to 11 letters and digits, one a letter; got {shown!r}")

    def __init__(self, context: DeliveryContext, pacer: Pacer) -> None:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        try:
            self.validate(context.settings)
        except ValueError as error:
            raise ValueError(f"channels.{context.channel}.{error}") from None
        super().__init__(context, pacer)
        self.attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": str(self.setting("sms_type"))}}
        if sender := self.setting("sender"):
            self.attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": str(sender)}
        self.clients = AwsClients(SnsHook(aws_conn_id=self.conn_id))  # type: ignore[no-untyped-call]

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """One SNS client for one sender thread."""
        with self.clients.connection() as client:
            yield client

    def check(self) -> str:
        """``GetSMSAttributes``: the credentials work and SNS answers; nothing is sent."""
        with self.connection() as client:
            attributes = checked("sns", client.get_sms_attributes).get("attributes", {})
            region = client.meta.region_name
        sms_type = attributes.get("DefaultSMSType") or "not set"
        limit = attributes.get("MonthlySpendLimit") or "not set"
        return f"sns ({region}): connected; account default SMS type {sms_type}, monthly spend limit (USD) {limit}"

    def send_one(self, connection: Any, recipient: Recipient) -> bool:
        """``Publish`` the rendered text to the recipient's phone number."""
        text = self.payload(self.values(recipient))["text"]
        number = self.address(recipient)
        deliver(
            "SNS",
            lambda: connection.publish(PhoneNumber=number, Message=text, MessageAttributes=self.attributes),
            sns_bad_address,
        )
        return True
