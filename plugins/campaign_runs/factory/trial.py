"""Trying a campaign's channels before a run: check each Connection, or send ``[TEST]`` messages to given addresses.

Nothing here belongs to a run: no ledger, no snapshot, no progress (so no Monitor count) and no suppression list
(a test address the provider refuses is never put on it). A test message is rendered with the audience's first
row (read as the audience preview reads it, nothing written) or with given fields, and goes straight through the
channel's transport (``connection()`` + ``send_one()``), once, to the given addresses only. A dry-run channel
sends and writes nothing: its rendered message comes back.
"""

from __future__ import annotations

import email.policy
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.answers import Refused, Transient, short
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, EmailAdapter, Pacer, render
from campaign_runs.factory.fields import COLUMN_PATTERN
from campaign_runs.factory.hygiene import address_problem, normalised_address
from campaign_runs.factory.transports import DRY_RUN
from campaign_runs.factory.transports.dry_run import SinkAdapter

if TYPE_CHECKING:
    from campaign_runs.factory.spec import CampaignSpec, ChannelSpec

MAX_ADDRESSES = 10
MAX_FIELDS = 200  # as many as a source row may hold
MAX_FIELD_CHARS = 8192
TEST_PREFIX = "[TEST] "
TEST_RUN_ID = "test-send"
DRY_RUN_CHECK = "dry run: nothing is sent"
DRY_RUN_SENT = "dry run: not sent"
PREFIXED = {"email": "subject", "sms": "text", "push": "title"}  # the setting that starts with [TEST]
WEBHOOK_MARKER = "campaign_test"  # the key a webhook's JSON object body gets: "[TEST]"
KINDS = {"email": "email", "phone": "sms", "push_token": "push"}  # address field -> how it is checked (hygiene)
KIND_WORDS = {
    "email": "an email address",
    "phone": "an E.164 phone number (+33612345678)",
    "push_token": "a push token",
    "id": "a recipient id",
}
MAX_ADDRESS_CHARS = 4096
# Extra keys whose values are secret: Airflow's own sensitive field names, matched inside the key.
SENSITIVE = re.compile(
    r"access_key|access_token|api_?key|auth_header|authorization|bearer|connection_string|credential|dsn|keyfile"
    r"|passphrase|passw|private_key|proxy|secret|service_account|service_key|token|webhook_url"
)
MIN_SECRET = 4  # shorter values are not masked (they would blot out ordinary words)
MIN_LOGIN = 16  # a login this long is an account or key id (AWS, Twilio): masked too
MASK = "***"


class TrialError(ValueError):
    """A test send refused before anything was sent: too many addresses, a bad address, channel or field."""


@dataclass(frozen=True)
class ChannelCheck:
    """One channel's Connection tried: its transport (as the pages say it), Connection, and the answer."""

    channel: str
    transport: str
    conn_id: str
    ok: bool
    answer: str


@dataclass(frozen=True)
class TestSend:
    """One test message: where it went, whether the provider took it, what it said, and the message rendered."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    channel: str
    transport: str
    to: str
    sent: bool
    answer: str
    content: dict[str, str] = field(default_factory=dict)


def _adapter_class(channel: ChannelSpec) -> type[ChannelAdapter]:
    return ChannelAdapter.for_transport(channel.name, channel.transport)


def _context(spec: CampaignSpec, channel: ChannelSpec, run_id: str = TEST_RUN_ID) -> DeliveryContext:
    """A context of no run: no sink, no suppression list."""
    values = {"campaign_id": spec.id, "campaign_description": spec.description, "run_id": run_id}
    return DeliveryContext(spec.id, run_id, channel.name, channel.settings, Path(), values, None, channel.conn_id)


def address_field(channel: ChannelSpec) -> str:
    """The recipient field ``channel`` sends to: email, phone, push_token (a webhook's ``address_field``: or id)."""
    return str(channel.settings.get("address_field") or ChannelAdapter.registry[channel.name].address_field)


def _conn_id(channel: ChannelSpec) -> str:
    return "" if channel.dry_run else channel.conn_id or _adapter_class(channel).default_conn_id


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secrets_of(conn_id: str) -> list[str]:
    """What must never be shown of Connection ``conn_id``: password, key ids, sensitive extras (longest first)."""
    try:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id)
        extra = connection.extra_dejson
    except Exception:  # no such Connection: nothing of it can leak
        return []
    login = connection.login or ""
    found = [connection.password or "", login if len(login) >= MIN_LOGIN else ""]
    found += [text for key, value in extra.items() if SENSITIVE.search(str(key).lower()) for text in _leaves(value)]
    if isinstance(connection.host, str) and "/" in connection.host:  # a URL host may carry a token in its path
        found.append(connection.host)
    return sorted({text for text in found if len(text) >= MIN_SECRET}, key=len, reverse=True)


def masked(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, on one line, capped (``answers.short``)."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return short(text)


def _failure(error: BaseException, secrets: Iterable[str]) -> str:
    reason = getattr(error, "reason", None) if isinstance(error, Refused | Transient) else None
    return masked(reason or f"{type(error).__name__}: {error}", secrets)


def _check(spec: CampaignSpec, channel: ChannelSpec) -> ChannelCheck:
    label, conn_id = channel.delivery_label, _conn_id(channel)
    if channel.dry_run:
        return ChannelCheck(channel.name, label, conn_id, True, DRY_RUN_CHECK)
    secrets = secrets_of(conn_id)
    try:
        answer = _adapter_class(channel)(_context(spec, channel), Pacer(0)).check()
    except Exception as error:
        return ChannelCheck(channel.name, label, conn_id, False, _failure(error, secrets))
    return ChannelCheck(channel.name, label, conn_id, True, masked(str(answer), secrets))


def check_channels(spec: CampaignSpec) -> list[ChannelCheck]:
    """Each channel's Connection tried without sending anything (``ChannelAdapter.check``); no secret is shown."""
    return [_check(spec, channel) for channel in spec.channels]


# ---------------------------------------------------------------- test sends


def _kind(address: str) -> str:
    """The address field ``address`` looks like it is for: email, phone or push_token."""
    if "@" in address:
        return "email"
    return "phone" if re.fullmatch(r"[+0-9\s().-]+", address) else "push_token"


def _address(channel: str, field_name: str, raw: str) -> tuple[str, str | None]:
    """The address as sent on a channel sending to ``field_name``, and why it cannot be sent to (or None)."""
    kind = KINDS.get(field_name, channel)
    address = normalised_address(kind, raw)
    if kind in KINDS.values():
        problem = address_problem(kind, address)
    else:  # a webhook's recipient id: any one line of text
        problem = None if address and len(address) <= MAX_ADDRESS_CHARS and address.isprintable() else "invalid"
    return address, None if problem is None else f"{short(raw)!r} is not {KIND_WORDS.get(field_name, 'an address')}"


def plan_addresses(spec: CampaignSpec, to: Sequence[str], channel: str | None) -> dict[str, list[str]]:
    """Channel -> the given addresses it sends to; ``TrialError`` naming every refused address (nothing sent)."""
    if not to:
        raise TrialError("Give at least one address to send the test to.")
    if len(to) > MAX_ADDRESSES:
        raise TrialError(f"{len(to)} addresses: a test goes to at most {MAX_ADDRESSES}.")
    names = [c.name for c in spec.channels]
    if channel is not None and channel not in names:
        raise TrialError(f"Unknown channel {short(channel)[:60]!r}: the campaign's channels are {', '.join(names)}.")
    chosen = [c for c in spec.channels if channel is None or c.name == channel]
    plan: dict[str, list[str]] = {}
    problems: list[str] = []
    for raw in to:
        raw = raw.strip() if isinstance(raw, str) else ""
        fits = [c for c in chosen if channel is not None or address_field(c) == _kind(raw)]
        if not fits:
            kinds = ", ".join(f"{c.name} ({KIND_WORDS.get(address_field(c), 'an address')})" for c in chosen)
            problems.append(f"{short(raw)!r} fits none of the campaign's channels: {kinds}")
        for target in fits:
            address, problem = _address(target.name, address_field(target), raw)
            if problem:
                problems.append(f"{problem} ({target.name})")
            elif address not in plan.setdefault(target.name, []):
                plan[target.name].append(address)
    if problems:
        raise TrialError("Nothing was sent: " + "; ".join(problems[:MAX_ADDRESSES]) + ".")
    return plan


def checked_fields(fields: Any) -> dict[str, Any]:
    """Template values given by hand: a flat mapping of column names to text, numbers, true/false or null."""
    if not isinstance(fields, dict):
        raise TrialError("The fields must be a JSON object of column: value.")
    if len(fields) > MAX_FIELDS:
        raise TrialError(f"{len(fields)} fields: the limit is {MAX_FIELDS}.")
    for name, value in fields.items():
        if not isinstance(name, str) or not COLUMN_PATTERN.fullmatch(name):
            raise TrialError(f"The field {short(str(name))[:60]!r} is not a column name ({COLUMN_PATTERN.pattern}).")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TrialError(f"The field {name!r} must be text, a number, true/false or null, not a list or object.")
        if isinstance(value, str) and (len(value) > MAX_FIELD_CHARS or "\x00" in value):
            raise TrialError(f"The field {name!r} is longer than {MAX_FIELD_CHARS} characters or holds a NUL.")
    return dict(fields)


def first_row(spec: CampaignSpec) -> Recipient | None:
    """The audience's first row as a run would take it (read now, nothing written); None when it is empty."""
    from campaign_runs.factory import preview
    from campaign_runs.factory.audience import make_recipient, plan_audience
    from campaign_runs.factory.hygiene import SnapshotPlan
    from campaign_runs.factory.sources import SqlSource, bindings, connection_of, source_for

    audience = spec.audience
    if audience.is_demo:
        plan = plan_audience(
            campaign=spec.id,
            segment=audience.segment,
            criteria=audience.criteria,
            size=audience.size,
            population=audience.population,
            rotate_per_slot=audience.rotate_per_slot,
            slot=preview.preview_slot(),
            restart_of=None,
        )
        return make_recipient(plan, 0) if plan.size else None
    if audience.conn_id:
        connection_of(audience.conn_id)
    source = source_for(audience)
    if isinstance(source, SqlSource):
        source = replace(source, timeout_seconds=min(float(source.timeout_seconds), preview.CHECK_SECONDS))
    rows = source.rows(bindings(preview.preview_slot(), preview.PREVIEW_RUN_ID, {}))
    try:
        raw = next(iter(rows), None)
    finally:
        getattr(rows, "close", lambda: None)()  # the query or the file is closed after one row
    if raw is None:
        return None
    row = dict(zip(preview.ROW_COLUMNS, SnapshotPlan.of(audience, spec.channels).row(0, raw), strict=True))
    return Recipient(id=row["recipient"], position=0, values=json.loads(row["fields"]))


def addressed(base: Recipient, field_name: str, address: str) -> Recipient:
    """``base`` with ``address`` as its only address, in ``field_name`` (email, phone, push_token or id)."""
    found = {"id": base.id, "email": "", "phone": "", "push_token": "", field_name: address}
    return Recipient(found["id"], base.position, found["email"], found["phone"], found["push_token"], base.values)


def _recipient(spec: CampaignSpec, fields: dict[str, Any] | None) -> Recipient:
    if fields is not None:
        values = checked_fields(fields)
        return Recipient(id=str(values.get("id") or "test"), position=0, values=values)
    found = first_row(spec)
    if found is None:
        raise TrialError("The audience is empty now: give the fields to fill the templates with.")
    return Recipient(id=found.id, position=found.position, values=dict(found.values))  # no real address kept


def _marked_body(text: str) -> str:
    """A webhook's JSON object body with ``"campaign_test": "[TEST]"`` first (an array body is left as it is)."""
    try:
        document = json.loads(text)
    except ValueError:
        return text  # the adapter says what is wrong with it
    if not isinstance(document, dict):
        return text
    marked_document = {WEBHOOK_MARKER: TEST_PREFIX.strip()}
    marked_document.update((key, value) for key, value in document.items() if key != WEBHOOK_MARKER)
    return json.dumps(marked_document, ensure_ascii=False)


def marked(channel: ChannelSpec) -> ChannelSpec:
    """``channel`` with ``[TEST] `` before its email subject, SMS text or push title, or in its webhook body."""
    settings = dict(channel.settings)
    if (key := PREFIXED.get(channel.name)) is not None:
        settings[key] = (TEST_PREFIX + str(settings.get(key) or "").removeprefix(TEST_PREFIX)).rstrip()
    elif channel.name == "webhook" and isinstance(settings.get("body"), str):
        settings["body"] = _marked_body(settings["body"])
    return replace(channel, settings=settings)


def _email(context: DeliveryContext, recipient: Recipient) -> dict[str, str]:
    """The email as the preview shows it: subject and text body, the unsubscribe link as a placeholder."""
    from campaign_runs.factory.preview import PREVIEW_SMTP, UNSUBSCRIBE_SHOWN

    mailer = EmailAdapter(context, Pacer(0), smtp=PREVIEW_SMTP)
    values = {**mailer.values(recipient), "unsubscribe_url": UNSUBSCRIBE_SHOWN}  # no real link is signed here
    message = message_from_bytes(mailer.template.render(recipient.email, values, {}), policy=email.policy.default)
    body = str(message.get_content()).replace("\r\n", "\n").rstrip("\n")
    return {"subject": str(message["Subject"] or ""), "body": body}


def rendered(context: DeliveryContext, recipient: Recipient) -> dict[str, str]:
    """The message ``recipient`` gets on the context's channel (email: subject and body; sms: text...)."""
    if context.channel == EmailAdapter.name:
        return _email(context, recipient)
    sink = ChannelAdapter.transports.get((context.channel, DRY_RUN))
    if sink is not None and issubclass(sink, SinkAdapter):
        adapter = sink(context, Pacer(0))
        return {key: str(value) for key, value in adapter.payload(adapter.values(recipient)).items()}
    values = {**context.campaign_values, **recipient.fields()}
    return {key: render(value, values) for key, value in context.settings.items() if isinstance(value, str)}


def _send(adapter: ChannelAdapter, connection: Any, recipient: Recipient, secrets: list[str]) -> tuple[bool, str]:
    """One try, no retry; a refusal is only reported (never a bounce on the suppression list)."""
    try:
        sent = adapter.send_one(connection, recipient)
    except Refused as refused:
        return False, "refused: " + masked(refused.reason, secrets)
    except Transient as transient:
        return False, "not sent for now: " + masked(transient.reason, secrets)
    except Exception as error:
        return False, "failed: " + _failure(error, secrets)
    return sent, "sent" if sent else "refused"


def _send_channel(
    spec: CampaignSpec, channel: ChannelSpec, base: Recipient, to: list[str], run_id: str
) -> list[TestSend]:
    label, context = channel.delivery_label, _context(spec, channel, run_id)
    secrets = [] if channel.dry_run else secrets_of(_conn_id(channel))
    people = [addressed(base, address_field(channel), address) for address in to]
    try:
        contents = [rendered(context, person) for person in people]
        adapter = None if channel.dry_run else _adapter_class(channel)(context, Pacer(0))
    except Exception as error:  # settings the transport cannot send (a webhook body that is no JSON...)
        return [TestSend(channel.name, label, a, False, "not sent: " + _failure(error, secrets)) for a in to]
    if adapter is None:
        return [TestSend(channel.name, label, a, False, DRY_RUN_SENT, c) for a, c in zip(to, contents, strict=True)]
    sends: list[TestSend] = []
    try:
        with adapter.connection() as connection:
            for address, person, content in zip(to, people, contents, strict=True):
                sent, answer = _send(adapter, connection, person, secrets)
                sends.append(TestSend(channel.name, label, address, sent, answer, content))
    except Exception as error:  # the connection did not open (or close): what is left was not sent
        failed = "not sent: " + _failure(error, secrets)
        left = list(zip(to, contents, strict=True))[len(sends) :]
        sends += [TestSend(channel.name, label, a, False, failed, c) for a, c in left]
    return sends


def send_test(
    spec: CampaignSpec, to: Sequence[str], channel: str | None = None, fields: dict[str, Any] | None = None
) -> list[TestSend]:
    """``[TEST]`` messages to ``to`` only (on ``channel``, or on each channel an address fits), one try each.

    Each call has its own run id (``test-send-<random>``): a receiver that deduplicates by idempotency key
    takes every test.
    """
    plan = plan_addresses(spec, to, channel)
    recipient = _recipient(spec, fields)
    run_id = f"{TEST_RUN_ID}-{uuid.uuid4().hex[:12]}"
    channels = [marked(c) for c in spec.channels if c.name in plan]
    return [send for c in channels for send in _send_channel(spec, c, recipient, plan[c.name], run_id)]
