"""Email through Amazon SES (the Amazon provider's ``SesHook``): one raw MIME message per recipient.

Also the Amazon transports' shared parts (``AwsClients``, ``deliver``, ``checked``): SNS uses them too.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.answers import Refused, Transient, retry_after_seconds, short
from campaign_runs.factory.channels import DeliveryContext, EmailAdapter, Pacer, SmtpSettings

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

AWS_CONN_ID = "aws_default"
CONNECT_TIMEOUT = 10.0  # seconds; a Connection's ``config_kwargs`` may say otherwise
READ_TIMEOUT = 30.0
# Error codes meaning "not now" (nothing was sent): throttling, and the service failing on its side.
TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "Throttled", "ThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown", "KMSThrottling",
        "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
        "InternalErrorException", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
    }
)  # fmt: skip
# SES's words when it refuses the recipient's address itself (its suppression list), not the sender or account.
SES_BAD_ADDRESS = ("address blacklisted", "suppression list")
CONFIGURATION_SET = re.compile(r"[A-Za-z0-9_-]{1,64}")


class AwsClients:
    """Opens clients of one AWS service for the hook's Connection, read once when this is built."""

    def __init__(self, hook: Any) -> None:
        from botocore.config import Config

        self.hook = hook
        self.service = str(hook.client_type)
        connection = hook.conn_config  # the Connection is read here, in the thread building the adapter
        self.endpoint_url = connection.get_service_endpoint_url(service_name=self.service)
        # botocore must never try again by itself: a message tried twice may arrive twice; the adapter decides.
        defaults = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
        self.config = defaults.merge(hook.config).merge(Config(retries={"total_max_attempts": 1}))
        # One session for every client: a new one loads the service's models again (a third of a second).
        self.session = hook.get_session(region_name=hook.region_name)
        self.lock = threading.Lock()  # a boto3 session is not thread-safe; the clients it makes are

    def open(self) -> Any:
        """A new client (its own connection pool): one per sender thread; raises when there are no credentials."""
        with self.lock:
            if self.session.get_credentials() is None:  # else every message would fail alike, once claimed
                raise RuntimeError(
                    f"{self.service}: no AWS credentials for Connection {self.hook.aws_conn_id!r} "
                    "(its login and password, its role, or this machine's AWS settings)"
                )
            return checked(
                self.service,
                lambda: self.session.client(
                    self.service, endpoint_url=self.endpoint_url, config=self.config, verify=self.hook.verify
                ),
            )  # no region, an endpoint URL that is not one: one clear line

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """One client, its connections closed on exit."""
        client = self.open()
        try:
            yield client
        finally:
            client.close()


def answer(error: Any, label: str, bad_address: Callable[[str, str], bool]) -> Refused | Transient:
    """What a botocore ``ClientError`` means for one message: refused for now (throttled, 5xx) or for good."""
    details = error.response.get("Error", {})
    metadata = error.response.get("ResponseMetadata", {})
    code, message = str(details.get("Code") or ""), str(details.get("Message") or "")
    status = int(metadata.get("HTTPStatusCode") or 0)
    reason = f"{label} {code or status}: {message}" if message else f"{label} {code or status}"
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        retry_after = metadata.get("HTTPHeaders", {}).get("retry-after")
        return Transient(reason, retry_after=retry_after_seconds(retry_after))
    return Refused(reason, bad_address=bad_address(code, message))


def deliver(label: str, send: Callable[[], Any], bad_address: Callable[[str, str], bool]) -> Any:
    """``send()``'s answer; an error answer or no connection raises ``Refused`` / ``Transient``.

    Anything else (a read timeout, a connection closed mid-answer) propagates: the message may have left.
    """
    from botocore import exceptions as aws

    try:
        return send()
    except aws.ClientError as error:
        raise answer(error, label, bad_address) from None
    except (aws.EndpointConnectionError, aws.ConnectTimeoutError) as error:  # no connection was made: nothing left
        raise Transient(f"{label} unreachable: {error}") from None
    except (aws.NoCredentialsError, aws.PartialCredentialsError, aws.CredentialRetrievalError) as error:
        raise Transient(f"{label}: {error}") from None  # before the request was signed: nothing left
    except aws.ParamValidationError as error:  # the client refused the request before sending it
        raise Refused(f"{label}: {error}") from None


def checked(label: str, call: Callable[[], Any]) -> Any:
    """``call()``'s answer; any AWS error raised again as one clear line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except (BotoCoreError, ClientError) as error:
        raise RuntimeError(f"{label}: {short(str(error))}") from None


def ses_bad_address(code: str, message: str) -> bool:
    """Whether SES refused the recipient's address itself (a sender or account problem is not the address's)."""
    return code == "MessageRejected" and any(words in message.lower() for words in SES_BAD_ADDRESS)


class SesEmailAdapter(EmailAdapter):
    """Sends each email with SES ``SendRawEmail``: the very bytes the SMTP transport sends, one recipient each."""

    transport = "ses"
    default_conn_id = AWS_CONN_ID
    transport_settings: ClassVar[dict[str, Any]] = {"configuration_set": ""}
    one_line_settings = EmailAdapter.one_line_settings | {"configuration_set"}
    overlap_claim = False  # nothing is said to SES before the message itself

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError("<setting>: <why>")`` when a transport setting is not one SES takes."""
        value = settings.get("configuration_set") or ""
        if value and not CONFIGURATION_SET.fullmatch(str(value)):
            raise ValueError(f"configuration_set: {str(value)[:80]!r} is not an SES configuration set name")

    def __init__(self, context: DeliveryContext, pacer: Pacer, smtp: SmtpSettings | None = None) -> None:
        from airflow.providers.amazon.aws.hooks.ses import SesHook

        try:
            self.validate(context.settings)
        except ValueError as error:
            raise ValueError(f"channels.{context.channel}.{error}") from None
        super().__init__(context, pacer, smtp)  # the sender: the Connection's extra mail_from, else [smtp]
        self.smtp = dataclasses.replace(self.smtp, login=None, password=None)  # only the sender is used
        self.clients = AwsClients(SesHook(aws_conn_id=self.conn_id))

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """One SES client for one sender thread."""
        with self.clients.connection() as client:
            yield client

    def check(self) -> str:
        """``GetSendQuota``: the credentials work and SES answers; nothing is sent."""
        with self.connection() as client:
            quota = checked("ses", client.get_send_quota)
            region = client.meta.region_name
        return (
            f"ses ({region}): connected; {quota.get('SentLast24Hours', 0):g} of {quota.get('Max24HourSend', 0):g} "
            f"messages sent in the last 24 hours, at most {quota.get('MaxSendRate', 0):g} a second; "
            f"sender {self.smtp.mail_from}"
        )

    def prepare(self, connection: Any, recipient: Recipient) -> None:
        """Nothing to stage: SES takes the whole message in one request."""

    def abandon(self, connection: Any, recipient: Recipient) -> None:
        """Nothing was staged."""

    def send_one(self, connection: Any, recipient: Recipient) -> bool:
        """``SendRawEmail`` of the recipient's message (their own unsubscribe link and headers) to them alone."""
        request: dict[str, Any] = {
            "Source": self.smtp.mail_from,
            "Destinations": [self.address(recipient)],
            "RawMessage": {"Data": self.message_bytes(recipient)},
        }
        if configuration_set := self.setting("configuration_set"):
            request["ConfigurationSetName"] = str(configuration_set)
        deliver("SES", lambda: connection.send_raw_email(**request), ses_bad_address)
        return True
