"""Channel adapters: one class per delivery channel (email over SMTP; SMS and push to local JSON-lines sinks)."""

from __future__ import annotations

import contextlib
import email.policy
import functools
import inspect
import logging
import smtplib
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.answers import MAX_ATTEMPTS, ChannelUnavailable, NotAuthorized, Refused, Transient
from campaign_runs.factory.mime import MessageTemplate, deliver, stage
from campaign_runs.factory.smtp_settings import SMTP_CONN_ID as SMTP_CONN_ID  # re-exported
from campaign_runs.factory.smtp_settings import SmtpSettings as SmtpSettings  # re-exported
from campaign_runs.factory.unsubscribe import PLACEHOLDER as UNSUBSCRIBE_URL
from campaign_runs.factory.unsubscribe import UnsubscribeLinks

if TYPE_CHECKING:
    from collections.abc import Callable

    from campaign_runs.factory.audience import Recipient
    from campaign_runs.factory.suppression import SuppressionList

from campaign_runs.factory.pacing import Pacer as Pacer  # re-exported: adapters are built with one

log = logging.getLogger(__name__)
SUPPRESSION_CHANNELS = {"email": "email", "phone": "sms", "push_token": "push"}  # address field -> list channel
REASONS_KEPT = 20  # distinct failure reasons counted per batch and in progress; the rest count as "other"
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
    retried: int = 0  # tries refused for now (throttled, 429, 5xx) and made again
    reasons: Counter[str] = field(default_factory=Counter)  # why messages failed, as the provider said

    def refused(self, reason: str) -> None:
        """Count one failure under ``reason`` (at most ``REASONS_KEPT`` distinct reasons, the rest as other)."""
        self.reasons[reason if reason in self.reasons or len(self.reasons) < REASONS_KEPT else "other"] += 1


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
    conn_id: str = ""  # the Connection of the channel's transport ("" = the transport's default)
    slot_key: str = ""  # the run's slot (a restart and a resend share it): part of a webhook's Idempotency-Key


class ChannelAdapter(ABC):
    """Delivers batches of messages on one channel; subclasses with a ``name`` register themselves."""

    name: ClassVar[str] = ""  # the channel (email, sms, push, webhook)
    transport: ClassVar[str] = ""  # how it is delivered (smtp, ses, sns, twilio, fcm, http, dry_run)
    default_conn_id: ClassVar[str] = ""  # the transport's Connection when the channel names none
    transport_settings: ClassVar[dict[str, Any]] = {}  # settings only this transport reads, with defaults
    setting_choices: ClassVar[dict[str, tuple[str, ...]]] = {}  # settings that must be one of a few values
    requires_conn_id: ClassVar[bool] = False  # True: the definition must name the Connection (no default)
    address_field: ClassVar[str] = "email"  # the recipient field this channel sends to
    overlap_claim: ClassVar[bool] = False  # True: ``prepare`` waits on the network, worth running beside the claim
    required_settings: ClassVar[tuple[str, ...]] = ()
    optional_settings: ClassVar[dict[str, Any]] = {}
    one_line_settings: ClassVar[frozenset[str]] = frozenset()  # settings that become a header or a sender id
    registry: ClassVar[dict[str, type[ChannelAdapter]]] = {}  # channel -> its first adapter (its settings)
    transports: ClassVar[dict[tuple[str, str], type[ChannelAdapter]]] = {}  # (channel, transport) -> adapter

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register every concrete adapter under its channel and transport."""
        super().__init_subclass__(**kwargs)
        if cls.name and not inspect.isabstract(cls):
            ChannelAdapter.registry.setdefault(cls.name, cls)
            ChannelAdapter.transports[(cls.name, cls.transport)] = cls

    @classmethod
    def for_transport(cls, channel: str, transport: str) -> type[ChannelAdapter]:
        """The adapter of ``channel`` over ``transport``; KeyError when there is none."""
        return cls.transports[(channel, transport)]

    @property
    def conn_id(self) -> str:
        """The Connection this adapter delivers through."""
        return self.context.conn_id or self.default_conn_id

    def setting(self, name: str) -> Any:
        """A channel or transport setting, its default when the definition leaves it out."""
        settings = self.context.settings
        return settings[name] if settings.get(name) is not None else self.transport_settings.get(name)

    def __init__(self, context: DeliveryContext, pacer: Pacer) -> None:
        self.context = context
        self.pacer = pacer

    def values(self, recipient: Recipient) -> dict[str, Any]:
        """Template values for one recipient."""
        return {**self.context.campaign_values, **recipient.fields()}

    def address(self, recipient: Recipient) -> str:
        """Where ``recipient``'s message goes on this channel (email address, phone number, device token)."""
        return str(getattr(recipient, self.address_field))

    @property
    def suppression_channel(self) -> str | None:
        """The suppression list's channel of this channel's addresses (None: addresses no list holds)."""
        return SUPPRESSION_CHANNELS.get(self.address_field_of_channel)

    @property
    def address_field_of_channel(self) -> str:
        """The recipient field this adapter sends to (a setting for some channels)."""
        return str(self.context.settings.get("address_field") or self.address_field)

    def refused_for_good(self, recipient: Recipient, reason: str) -> None:
        """The channel refused ``recipient``'s address for good: put it on the suppression list as bounced."""
        if (suppressions := self.context.suppressions) is not None and (channel := self.suppression_channel):
            suppressions.add(channel, self.address(recipient), reason="bounced", source=reason[:200], actor="system")

    @abstractmethod
    def connection(self) -> contextlib.AbstractContextManager[Any]:
        """One delivery connection (an SMTP session, an open sink file), closed on exit."""

    def check(self) -> str:
        """Try the transport's Connection without sending anything; a one-line answer, or raise what went wrong."""
        with self.connection():
            return f"{self.transport}: connected"

    def prepare(self, connection: Any, recipient: Recipient) -> None:  # noqa: B027 (a hook, no-op by default)
        """Do what may be done before the recipient is claimed, while the claim commits; nothing may leave yet."""

    def abandon(self, connection: Any, recipient: Recipient) -> None:  # noqa: B027
        """Undo ``prepare`` for a recipient whose claim failed."""

    @abstractmethod
    def send_one(self, connection: Any, recipient: Recipient) -> bool:
        """Hand one message to the channel: True accepted; raise ``Refused`` (for good) or ``Transient`` (for now).

        False is a refusal without a reason. Any other exception is an unknown outcome: the message is in doubt.
        """

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError("<setting>: <why>")`` when the channel's settings cannot be sent (checked at parse)."""
        return

    def _connect(self, gate: Gate, stack: ExitStack) -> tuple[Any] | None:
        """Enter ``connection()`` (tried again while the provider cannot be reached): (connection,), None if stopped."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return (stack.enter_context(self.connection()),)
            except Transient as transient:
                if attempt + 1 == MAX_ATTEMPTS:
                    raise ChannelUnavailable(
                        f"{self.name} over {self.transport}: no connection after {MAX_ATTEMPTS} tries "
                        f"(last: {transient.reason}); nothing more is sent, restart the run to go on"
                    ) from None
                log.info("%s/%s: %s; connecting again", self.name, self.transport, transient.reason)
                if gate.pause(transient.delay(attempt)):
                    return None
        return None  # pragma: no cover (the loop returns or raises)

    def send_batch(self, batch: Sequence[Recipient], outcome: BatchOutcome, gate: Gate | None = None) -> None:
        """Deliver ``batch`` over one connection, paced; ``gate`` may stop it between any two messages."""
        gate = gate or Gate()
        with ExitStack() as stack:
            if (connected := self._connect(gate, stack)) is None:
                outcome.stopped = True
                return
            connection = connected[0]
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
                delivered = self._deliver(connection, recipient, outcome, gate)
                if delivered is None:  # stopped while waiting to try again: nothing left, the recipient is given back
                    gate.settle(recipient, False)
                    outcome.stopped = True
                    return
                (outcome.delivered if delivered else outcome.failed).append(recipient)
                gate.settle(recipient, delivered)

    def _deliver(self, connection: Any, recipient: Recipient, outcome: BatchOutcome, gate: Gate) -> bool | None:
        """``send_one``, tried again after a refusal for now (backoff or ``Retry-After``); None if stopped meanwhile."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                delivered = self.send_one(connection, recipient)
            except Refused as refused:
                log.warning("%s/%s refused %s: %s", self.name, self.transport, recipient.id, refused.reason)
                outcome.refused(refused.reason)
                if refused.bad_address:
                    self.refused_for_good(recipient, refused.reason)
                return False
            except NotAuthorized as refused:
                gate.settle(recipient, False)  # certainly not sent: given back, not in doubt
                why = f"the provider refused the credentials of Connection {self.conn_id} ({refused.reason})"
                raise ChannelUnavailable(f"{self.name} over {self.transport}: {why}; fix it, then restart") from None
            except Transient as transient:
                if attempt + 1 == MAX_ATTEMPTS:
                    gate.settle(recipient, False)  # certainly not sent: given back, not in doubt
                    raise ChannelUnavailable(
                        f"{self.name} over {self.transport} refused a message {MAX_ATTEMPTS} times in a row "
                        f"(last: {transient.reason}); nothing more is sent, restart the run to go on"
                    ) from None
                outcome.retried += 1
                log.info("%s/%s: %s; trying again", self.name, self.transport, transient.reason)
                if gate.pause(transient.delay(attempt)):
                    return None
                continue
            if not delivered:
                outcome.refused("refused")
            return delivered
        return False  # pragma: no cover (the loop returns or raises)


def smtp_answer(code: int, reason: str, *, address: bool = False) -> Refused | Transient:
    """An SMTP refusal as an answer; ``address``: a reply to RCPT TO, about that one recipient.

    A recipient's 4xx (greylisted, mailbox busy) fails this message (a later run tries again); their 5xx also
    bounces the address. Any other 4xx (421 closing, 451 local error) is the server's: tried again with backoff.
    """
    if address:
        return Refused(f"SMTP {code} {reason}", bad_address=500 <= code < 600)
    if 400 <= code < 500:
        return Transient(f"SMTP {code} {reason}")
    return Refused(f"SMTP {code} {reason}")


class EmailAdapter(ChannelAdapter):
    """Sends real email over SMTP: one connection per batch."""

    name = "email"
    transport = "smtp"
    default_conn_id = SMTP_CONN_ID
    address_field = "email"
    overlap_claim = True
    required_settings = ("subject", "body")
    optional_settings: ClassVar[dict[str, Any]] = {"from_name": "", "reply_to": ""}
    one_line_settings = frozenset({"subject", "from_name", "reply_to"})

    def __init__(self, context: DeliveryContext, pacer: Pacer, smtp: SmtpSettings | None = None) -> None:
        super().__init__(context, pacer)
        self.smtp = smtp or SmtpSettings.resolve(self.conn_id)

    def connect(self) -> smtplib.SMTP:
        """Open one authenticated SMTP connection."""
        settings = self.smtp
        client_class = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
        try:
            client = client_class(settings.host, settings.port, timeout=settings.timeout)
        except (ConnectionError, TimeoutError, smtplib.SMTPConnectError) as error:  # nothing was said yet
            raise Transient(f"SMTP {settings.host}:{settings.port} not reachable: {error}") from None
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
        refusal: Refused | Transient | None = None
        try:
            message: bytes | None = stage(connection, self.smtp.mail_from, recipient, self.message_bytes)
        except smtplib.SMTPRecipientsRefused as refused:
            message = None  # refused: the transaction is reset; send_one reports it
            for code, reply in refused.recipients.values():  # a 5xx refuses the address for good: it bounces
                refusal = smtp_answer(code, reply.decode(errors="replace"), address=True)
        except smtplib.SMTPSenderRefused as refused:
            message, refusal = None, smtp_answer(refused.smtp_code, "sender refused")
        setattr(connection, STAGED, (recipient.id, message, refusal))

    def abandon(self, connection: smtplib.SMTP, recipient: Recipient) -> None:
        """Reset the staged transaction: nothing was sent."""
        staged = getattr(connection, STAGED, None)
        setattr(connection, STAGED, None)
        if staged is not None and staged[1] is not None:
            connection.rset()

    def send_one(self, connection: smtplib.SMTP, recipient: Recipient) -> bool:
        """Send one email; a refused recipient, sender or message raises ``Refused`` (the server did not take it)."""
        staged = getattr(connection, STAGED, None)
        setattr(connection, STAGED, None)
        if staged is None or staged[0] != recipient.id:  # not prepared (a direct call): stage it now
            self.prepare(connection, recipient)
            staged = getattr(connection, STAGED)
            setattr(connection, STAGED, None)
        if staged[1] is None:
            raise staged[2] or Refused("refused")
        try:
            deliver(connection, staged[1])
        except smtplib.SMTPDataError as error:
            raise smtp_answer(error.smtp_code, "message refused") from None
        return True
