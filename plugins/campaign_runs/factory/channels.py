"""Channel adapters: one class per delivery channel (email over SMTP; SMS and push to local JSON-lines sinks)."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
import functools
import inspect
import json
import os
import smtplib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from campaign_runs.factory.mime import MessageTemplate, deliver, stage
from campaign_runs.factory.unsubscribe import PLACEHOLDER as UNSUBSCRIBE_URL
from campaign_runs.factory.unsubscribe import UnsubscribeLinks

if TYPE_CHECKING:
    from collections.abc import Callable

    from campaign_runs.factory.audience import Recipient
    from campaign_runs.factory.suppression import SuppressionList

from campaign_runs.factory.pacing import Pacer as Pacer  # re-exported: adapters are built with one

SMTP_CONN_ID = "campaign_smtp"
STAGED = "_campaign_staged"  # on an SMTP connection between prepare() and send_one(): (recipient id, bytes or None)


def render(template: str, values: dict[str, Any]) -> str:
    """Fill ``$name`` / ``${name}`` placeholders; unknown placeholders stay as written."""
    return Template(template).safe_substitute(values)


class Gate:
    """What happens around each message; this default never stops and records nothing (the dispatcher's records)."""

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` before the next message; True when the run stopped (the batch then ends)."""
        if seconds > 0:
            time.sleep(seconds)
        return False

    def holds_back(self, recipient: Recipient) -> bool:
        """True skips ``recipient`` before anything is said to the channel (an address on the suppression list)."""
        return False

    def claim(self, recipient: Recipient) -> bool:
        """Called right before ``recipient``'s message leaves; False skips it."""
        return True

    def begin_claim(self, recipient: Recipient, *, overlap: bool) -> Callable[[], bool]:
        """Start ``claim``; the returned call waits for its answer. This default claims at once."""
        claimed = self.claim(recipient)
        return lambda: claimed

    def settle(self, recipient: Recipient, delivered: bool) -> None:
        """Called once the channel accepted (``delivered``) or refused the message."""


@dataclass
class BatchOutcome:
    """Recipients delivered and failed in one batch, filled as messages go out; ``stopped`` if cut short."""

    delivered: list[Recipient] = field(default_factory=list)
    failed: list[Recipient] = field(default_factory=list)
    stopped: bool = False


@dataclass(frozen=True)
class DeliveryContext:
    """What an adapter needs to know about the run it delivers for."""

    campaign: str
    run_id: str
    channel: str
    settings: dict[str, Any]
    sink_dir: Path
    campaign_values: dict[str, Any]
    suppressions: SuppressionList | None = None


class ChannelAdapter(ABC):
    """Delivers batches of messages on one channel; subclasses with a ``name`` register themselves."""

    name: ClassVar[str] = ""
    address_field: ClassVar[str] = "email"  # the recipient field this channel sends to
    overlap_claim: ClassVar[bool] = False  # True: ``prepare`` waits on the network, worth running beside the claim
    required_settings: ClassVar[tuple[str, ...]] = ()
    optional_settings: ClassVar[dict[str, Any]] = {}
    one_line_settings: ClassVar[frozenset[str]] = frozenset()  # settings that become a header or a sender id
    registry: ClassVar[dict[str, type[ChannelAdapter]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register every concrete adapter under its channel name."""
        super().__init_subclass__(**kwargs)
        if cls.name and not inspect.isabstract(cls):
            ChannelAdapter.registry[cls.name] = cls

    def __init__(self, context: DeliveryContext, pacer: Pacer) -> None:
        self.context = context
        self.pacer = pacer

    def values(self, recipient: Recipient) -> dict[str, Any]:
        """Template values for one recipient."""
        return {**self.context.campaign_values, **recipient.fields()}

    def address(self, recipient: Recipient) -> str:
        """Where ``recipient``'s message goes on this channel (email address, phone number, device token)."""
        return str(getattr(recipient, self.address_field))

    def refused_for_good(self, recipient: Recipient, reason: str) -> None:
        """The channel refused ``recipient``'s address for good: put it on the suppression list as bounced."""
        if (suppressions := self.context.suppressions) is not None:
            suppressions.add(
                self.context.channel, self.address(recipient), reason="bounced", source=reason[:200], actor="system"
            )

    @abstractmethod
    def connection(self) -> contextlib.AbstractContextManager[Any]:
        """One delivery connection (an SMTP session, an open sink file), closed on exit."""

    def prepare(self, connection: Any, recipient: Recipient) -> None:  # noqa: B027 (a hook, no-op by default)
        """Do what may be done before the recipient is claimed, while the claim commits; nothing may leave yet."""

    def abandon(self, connection: Any, recipient: Recipient) -> None:  # noqa: B027
        """Undo ``prepare`` for a recipient whose claim failed."""

    @abstractmethod
    def send_one(self, connection: Any, recipient: Recipient) -> bool:
        """Hand one message to the channel: True accepted, False refused; raises when the outcome is unknown."""

    def send_batch(self, batch: Sequence[Recipient], outcome: BatchOutcome, gate: Gate | None = None) -> None:
        """Deliver ``batch`` over one connection, paced; ``gate`` may stop it between any two messages."""
        gate = gate or Gate()
        with self.connection() as connection:
            for recipient in batch:
                if gate.holds_back(recipient):  # before anything reaches the server, not even RCPT TO
                    continue
                if gate.pause(self.pacer.reserve()):
                    outcome.stopped = True
                    return
                claimed = gate.begin_claim(recipient, overlap=self.overlap_claim)
                try:
                    self.prepare(connection, recipient)
                except BaseException:
                    if claimed():  # committed, but nothing left: the recipient is given back with the batch's end
                        gate.settle(recipient, False)
                    raise
                if not claimed():
                    self.abandon(connection, recipient)
                    continue
                delivered = self.send_one(connection, recipient)
                (outcome.delivered if delivered else outcome.failed).append(recipient)
                gate.settle(recipient, delivered)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send email."""

    host: str
    port: int
    starttls: bool
    ssl: bool
    timeout: float
    mail_from: str
    login: str | None = None
    password: str | None = None

    @classmethod
    def resolve(cls) -> SmtpSettings:
        """Connection ``campaign_smtp`` when it exists, otherwise Airflow's ``[smtp]`` settings (Task SDK only)."""
        from airflow.sdk import BaseHook, conf
        from airflow.sdk.exceptions import AirflowNotFoundException

        base = cls(
            host=conf.get("smtp", "smtp_host", fallback="localhost"),
            port=conf.getint("smtp", "smtp_port", fallback=25),
            starttls=conf.getboolean("smtp", "smtp_starttls", fallback=False),
            ssl=conf.getboolean("smtp", "smtp_ssl", fallback=False),
            timeout=float(conf.getint("smtp", "smtp_timeout", fallback=30)),
            mail_from=conf.get("smtp", "smtp_mail_from", fallback="") or "campaigns@localhost",
        )
        try:
            connection = BaseHook.get_connection(SMTP_CONN_ID)
        except AirflowNotFoundException:
            return base
        extra = connection.extra_dejson
        return cls(
            host=connection.host or base.host,
            port=int(connection.port or base.port),
            starttls=bool(extra.get("starttls", base.starttls)),
            ssl=bool(extra.get("ssl", base.ssl)),
            timeout=float(extra.get("timeout", base.timeout)),
            mail_from=str(extra.get("mail_from", base.mail_from)),
            login=connection.login or None,
            password=connection.password or None,
        )


class EmailAdapter(ChannelAdapter):
    """Sends real email over SMTP: one connection per batch."""

    name = "email"
    address_field = "email"
    overlap_claim = True
    required_settings = ("subject", "body")
    optional_settings: ClassVar[dict[str, Any]] = {"from_name": "", "reply_to": ""}
    one_line_settings = frozenset({"subject", "from_name", "reply_to"})

    def __init__(self, context: DeliveryContext, pacer: Pacer, smtp: SmtpSettings | None = None) -> None:
        super().__init__(context, pacer)
        self.smtp = smtp or SmtpSettings.resolve()

    def connect(self) -> smtplib.SMTP:
        """Open one authenticated SMTP connection."""
        settings = self.smtp
        client_class = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
        client = client_class(settings.host, settings.port, timeout=settings.timeout)
        if settings.starttls and not settings.ssl:
            client.starttls()
        if settings.login:
            client.login(settings.login, settings.password or "")
        client.ehlo_or_helo_if_needed()
        return client

    @functools.cached_property
    def template(self) -> MessageTemplate:
        """The email compiled once for the whole task: constant headers encoded, templates parsed."""
        settings = self.context.settings
        return MessageTemplate(
            mail_from=self.smtp.mail_from,
            from_name=str(settings.get("from_name") or ""),
            reply_to=str(settings.get("reply_to") or ""),
            subject=str(settings["subject"]),
            body=str(settings["body"]),
            headers={"X-Campaign-Id": self.context.campaign, "X-Campaign-Run-Id": self.context.run_id},
            one_click=True,
        )

    @functools.cached_property
    def unsubscribe(self) -> UnsubscribeLinks:
        """The signer and addresses of the recipients' unsubscribe links, read once for the whole task."""
        return UnsubscribeLinks.from_config(fallback_mailto=self.smtp.mail_from)

    def message_bytes(self, recipient: Recipient) -> bytes:
        """The email for one recipient, as sent: with its own one-click unsubscribe link (one HMAC)."""
        url, uris = self.unsubscribe.for_recipient(self.context.campaign, recipient.email)
        values = self.values(recipient)
        values[UNSUBSCRIBE_URL] = url  # after the recipient's fields: no column can replace the link
        return self.template.render(recipient.email, values, {"X-Campaign-Recipient": recipient.id}, uris)

    def message(self, recipient: Recipient) -> EmailMessage:
        """The email for one recipient, parsed back (what a mail client reads)."""
        return message_from_bytes(self.message_bytes(recipient), policy=email.policy.default)

    @contextmanager
    def connection(self) -> Iterator[smtplib.SMTP]:
        """One SMTP session, quit (or closed) on exit."""
        client = self.connect()
        try:
            yield client
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def prepare(self, connection: smtplib.SMTP, recipient: Recipient) -> None:
        """``MAIL FROM`` and ``RCPT TO`` while the claim commits; the message is built; nothing leaves before DATA."""
        try:
            message: bytes | None = stage(connection, self.smtp.mail_from, recipient, self.message_bytes)
        except smtplib.SMTPRecipientsRefused as refused:
            message = None  # refused: the transaction is reset; send_one reports it
            for code, reply in refused.recipients.values():
                if 500 <= code < 600:  # a permanent refusal of the address: it bounces from now on
                    self.refused_for_good(recipient, f"SMTP {code} {reply.decode(errors='replace')}")
        except smtplib.SMTPSenderRefused:
            message = None
        setattr(connection, STAGED, (recipient.id, message))

    def abandon(self, connection: smtplib.SMTP, recipient: Recipient) -> None:
        """Reset the staged transaction: nothing was sent."""
        staged = getattr(connection, STAGED, None)
        setattr(connection, STAGED, None)
        if staged is not None and staged[1] is not None:
            connection.rset()

    def send_one(self, connection: smtplib.SMTP, recipient: Recipient) -> bool:
        """Send one email; a refused recipient, sender or message is False (the server did not take it)."""
        staged = getattr(connection, STAGED, None)
        setattr(connection, STAGED, None)
        if staged is None or staged[0] != recipient.id:  # not prepared (a direct call): stage it now
            self.prepare(connection, recipient)
            staged = getattr(connection, STAGED)
            setattr(connection, STAGED, None)
        if staged[1] is None:
            return False
        try:
            deliver(connection, staged[1])
        except smtplib.SMTPDataError:
            return False
        return True


class SinkAdapter(ChannelAdapter):
    """Delivers to a local JSON-lines sink ``<sink_dir>/<campaign>/<channel>.jsonl``."""

    @abstractmethod
    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """The message content for one recipient."""

    @property
    def path(self) -> Path:
        """The sink file of this campaign and channel."""
        return self.context.sink_dir / self.context.campaign / f"{self.context.channel}.jsonl"

    @contextmanager
    def connection(self) -> Iterator[TextIO]:
        """The sink file, opened for appending and synced to disk on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            try:
                yield sink
            finally:
                sink.flush()
                os.fsync(sink.fileno())

    def send_one(self, connection: TextIO, recipient: Recipient) -> bool:
        """Append one line, handed to the OS at once (it survives the process being killed)."""
        record = {
            "campaign": self.context.campaign,
            "run_id": self.context.run_id,
            "channel": self.context.channel,
            "recipient": recipient.id,
            "to": self.address(recipient),
            "sent_at": dt.datetime.now(dt.UTC).isoformat(),
            **self.payload(self.values(recipient)),
        }
        connection.write(json.dumps(record, ensure_ascii=False) + "\n")
        connection.flush()
        return True


class SmsAdapter(SinkAdapter):
    """SMS to the recipient's phone number."""

    name = "sms"
    address_field = "phone"
    required_settings = ("text",)
    optional_settings: ClassVar[dict[str, Any]] = {"sender": "CAMPAIGN"}
    one_line_settings = frozenset({"sender"})

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """Sender and text."""
        return {"sender": self.context.settings["sender"], "text": render(self.context.settings["text"], values)}


class PushAdapter(SinkAdapter):
    """Push notification to the recipient's device token."""

    name = "push"
    address_field = "push_token"
    required_settings = ("title", "body")
    optional_settings: ClassVar[dict[str, Any]] = {"deep_link": ""}
    one_line_settings = frozenset({"title", "deep_link"})

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """Title, body and optional deep link."""
        return {key: render(str(self.context.settings[key]), values) for key in ("title", "body", "deep_link")}
