"""A campaign's audience as people check it before a run: read from its source, nothing written, nothing sent.

``preview_audience`` streams every row once to count them (constant memory), keeps the first few with the
hygiene decision a run would take for each channel (``SnapshotPlan.row``) and renders one message per channel
for the first row it would send to. Duplicates are not shown: a run finds them in its snapshot, after writing.
``check_audience`` reads only the source's column names and says what would go wrong: a Connection that does
not exist, a source that cannot be read, a column mapping or a template placeholder naming a missing column.
"""

from __future__ import annotations

import datetime as dt
import email.policy as email_policy
import json
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from email import message_from_bytes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.audience import Recipient, RunSlot, make_recipient, plan_audience
from campaign_runs.factory.channels import (
    ChannelAdapter,
    DeliveryContext,
    EmailAdapter,
    Pacer,
    SmtpSettings,
)
from campaign_runs.factory.hygiene import ADDRESS_FIELDS, SKIP_COLUMNS, SnapshotPlan
from campaign_runs.factory.snapshot import COLUMNS as SNAPSHOT_COLUMNS
from campaign_runs.factory.sources import (
    AudienceSource,
    AudienceSourceError,
    SqlSource,
    bindings,
    connection_of,
    source_for,
)
from campaign_runs.factory.transports.dry_run import DRY_RUN, SinkAdapter

if TYPE_CHECKING:
    from campaign_runs.factory.spec import CampaignSpec

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
CHECK_SECONDS = 30.0  # reading the column names: a query wrapped in ``WHERE 1=0`` is quick or broken
PREVIEW_SECONDS = 120.0  # counting every row of the source
PREVIEW_RUN_ID = "preview"
TEMPLATE_SETTINGS = {
    "email": ("subject", "body"),
    "sms": ("text",),
    "push": ("title", "body", "deep_link"),
    "webhook": ("body",),
}
CAMPAIGN_PLACEHOLDERS = ("campaign_id", "campaign_description", "run_id", "unsubscribe_url")
RECIPIENT_PLACEHOLDERS = ("id", "position", "email", "phone", "push_token")
ROW_COLUMNS = tuple(name.strip() for name in SNAPSHOT_COLUMNS.split(",")[2:])  # ``SnapshotPlan.row``'s order
PREVIEW_SMTP = SmtpSettings(host="", port=0, starttls=False, ssl=False, timeout=0.0, mail_from="preview@localhost")
SHOWN_COLUMNS = 30
UNSUBSCRIBE_SHOWN = "[the recipient's own unsubscribe link]"  # a run signs one per recipient; a preview signs none


@dataclass(frozen=True)
class AudienceProblem:
    """What would go wrong reading the audience: the dotted field it comes from and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class PreviewRow:
    """One row of the source as a run would see it: the recipient, its addresses and each channel's skip reason."""

    position: int
    id: str
    email: str
    phone: str
    push_token: str
    skipped: dict[str, str | None]  # channel -> why the row is skipped on it (None: it is sent to)
    fields: dict[str, Any]  # the template values: the source's columns and the mapped recipient fields


@dataclass(frozen=True)
class PreviewMessage:
    """One message rendered for the first row a channel would send to."""

    channel: str
    recipient: str
    position: int
    content: dict[str, str]


@dataclass(frozen=True)
class AudiencePreview:
    """What a campaign's audience holds now: a count, the first rows, one message per channel, any problem."""

    campaign: str
    source: str
    label: str
    count: int
    columns: tuple[str, ...]
    rows: tuple[PreviewRow, ...]
    sendable: dict[str, int]  # channel -> rows not skipped by hygiene (duplicates are only found by a run)
    skipped: dict[str, dict[str, int]]  # channel -> reason -> rows
    messages: tuple[PreviewMessage, ...]
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = asdict(self)
        data["columns"] = list(self.columns)
        data["problems"] = list(self.problems)
        return data


def preview_slot(now: dt.datetime | None = None) -> RunSlot:
    """The slot a preview reads for: now, as a run started now would bind ``:logical_date`` and its interval."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()
    return RunSlot(logical_date=moment, data_interval_start=moment, data_interval_end=moment, run_id=PREVIEW_RUN_ID)


def campaign_values(spec: CampaignSpec) -> dict[str, Any]:
    """The campaign's own template values, as a preview fills them."""
    return {"campaign_id": spec.id, "campaign_description": spec.description, "run_id": PREVIEW_RUN_ID}


def known_placeholders(spec: CampaignSpec, columns: Iterable[str]) -> set[str]:
    """Placeholders a template may name: the campaign's values, the recipient's, the mapped fields, the columns."""
    return {*CAMPAIGN_PLACEHOLDERS, *RECIPIENT_PLACEHOLDERS, *spec.audience.columns, *columns}


def _bounded(source: AudienceSource, seconds: float) -> AudienceSource:
    """``source`` giving up after ``seconds`` at most (a person waits for the answer)."""
    if isinstance(source, SqlSource):
        return replace(source, timeout_seconds=min(float(source.timeout_seconds), seconds))
    return source


def _source_field(spec: CampaignSpec) -> str:
    return "audience.query" if spec.audience.source == "sql" else "audience.url"


def _missing(field: str, column: str, what: str, columns: Sequence[str]) -> AudienceProblem:
    listed = ", ".join(columns[:SHOWN_COLUMNS]) + (", ..." if len(columns) > SHOWN_COLUMNS else "")
    return AudienceProblem(field, f"the source has no column {column!r} ({what}); it returns: {listed or 'nothing'}")


def _mapping_problems(spec: CampaignSpec, columns: Sequence[str]) -> list[AudienceProblem]:
    """Columns the mapping, the consent settings and the channels' addresses name that the source lacks."""
    audience, have = spec.audience, set(columns)
    problems = [
        _missing(f"audience.columns.{name}", column, f"mapped onto {name}", columns)
        for name, column in audience.columns.items()
        if column not in have
    ]
    if audience.consent_column and audience.consent_column not in have:
        problems.append(_missing("audience.consent_column", audience.consent_column, "the consent", columns))
    if "id" not in audience.columns and "id" not in have:
        problems.append(_missing("audience.columns", "id", "the recipient id: map one, e.g. {id: user_id}", columns))
    for channel in spec.channels:
        if channel.consent_column and channel.consent_column not in have:
            field = f"channels.{channel.name}.consent_column"
            problems.append(_missing(field, channel.consent_column, f"the {channel.name} consent", columns))
        kind = ADDRESS_FIELDS.get(channel.name)
        if kind and kind not in audience.columns and kind not in have:
            what = f"the {channel.name} address: map one with audience.columns.{kind}"
            problems.append(_missing(f"channels.{channel.name}", kind, what, columns))
    return problems


def _template_problems(spec: CampaignSpec, columns: Sequence[str]) -> list[AudienceProblem]:
    """Every template placeholder that names neither a column of the source nor a campaign or recipient value."""
    known = known_placeholders(spec, columns)
    problems = []
    for channel in spec.channels:
        for key in TEMPLATE_SETTINGS.get(channel.name, ()):
            template = channel.settings.get(key)
            if not isinstance(template, str):
                continue
            for name in string.Template(template).get_identifiers():
                if name not in known:
                    message = f"unknown placeholder ${name}: the {channel.name} {key} names a column the source lacks"
                    problems.append(_missing(f"channels.{channel.name}.{key}", name, message, columns))
    return problems


def _problems(spec: CampaignSpec, columns: Sequence[str]) -> list[AudienceProblem]:
    return _mapping_problems(spec, columns) + _template_problems(spec, columns)


def audience_problems(spec: CampaignSpec) -> list[AudienceProblem]:
    """What would go wrong reading ``spec``'s audience (none for the demo source); reads only column names."""
    if spec.audience.is_demo:
        return []
    if spec.audience.conn_id:
        try:
            connection_of(spec.audience.conn_id)
        except AudienceSourceError as error:
            return [AudienceProblem("audience.conn_id", str(error))]
    source = _bounded(source_for(spec.audience), CHECK_SECONDS)
    try:
        columns = source.columns(bindings(preview_slot(), PREVIEW_RUN_ID, {}))
    except AudienceSourceError as error:
        return [AudienceProblem(_source_field(spec), str(error))]
    return _problems(spec, columns)


def check_audience(spec: CampaignSpec) -> list[str]:
    """``audience_problems`` as text, each naming its field."""
    return [str(problem) for problem in audience_problems(spec)]


def render_message(spec: CampaignSpec, channel: str, recipient: Recipient) -> dict[str, str]:
    """The message ``channel``'s adapter would send ``recipient`` (email: subject and body; sms: text; push...)."""
    context = DeliveryContext(
        campaign=spec.id,
        run_id=PREVIEW_RUN_ID,
        channel=channel,
        settings=spec.channel(channel).settings,
        sink_dir=Path(),
        campaign_values=campaign_values(spec),
    )
    if channel == EmailAdapter.name:
        mailer = EmailAdapter(context, Pacer(0), smtp=PREVIEW_SMTP)
        values = {**mailer.values(recipient), "unsubscribe_url": UNSUBSCRIBE_SHOWN}  # no real link is signed
        message = message_from_bytes(mailer.template.render(recipient.email, values, {}), policy=email_policy.default)
        body = str(message.get_content()).replace("\r\n", "\n").rstrip("\n")
        return {"subject": str(message["Subject"] or ""), "body": body}
    adapter = ChannelAdapter.for_transport(channel, DRY_RUN)(context, Pacer(0))  # renders, sends nothing
    if not isinstance(adapter, SinkAdapter):
        return {}
    return {key: str(value) for key, value in adapter.payload(adapter.values(recipient)).items()}


def _recipient(row: dict[str, Any]) -> Recipient:
    """The recipient of a snapshot row (by column name)."""
    return Recipient(
        id=row["recipient"],
        position=row["position"],
        email=row["email"],
        phone=row["phone"],
        push_token=row["push_token"],
        values=json.loads(row["fields"]),
    )


@dataclass
class _Scan:
    """Rows counted so far, the ones kept, each channel's first sendable recipient and skip counts."""

    channels: tuple[str, ...]
    count: int = 0
    rows: list[PreviewRow] = field(default_factory=list)
    first: dict[str, Recipient] = field(default_factory=dict)
    skipped: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, row: dict[str, Any], limit: int) -> None:
        """Count one snapshot row (``SnapshotPlan.row``, by column name); keep it when among the first ``limit``."""
        self.count += 1
        skips = {c: row.get(SKIP_COLUMNS.get(c, "")) for c in self.channels}
        for channel, reason in skips.items():
            if reason is not None:
                self.skipped[channel][reason] += 1
        wanted = [c for c, reason in skips.items() if reason is None and c not in self.first]
        if len(self.rows) >= limit and not wanted:
            return
        recipient = _recipient(row)
        self.first.update((channel, recipient) for channel in wanted)
        if len(self.rows) < limit:
            r = recipient
            self.rows.append(PreviewRow(r.position, r.id, r.email, r.phone, r.push_token, skips, dict(r.values)))


def _scan(spec: CampaignSpec, rows: Iterable[dict[str, Any]], limit: int) -> _Scan:
    plan = SnapshotPlan.of(spec.audience, spec.channels)
    names = tuple(channel.name for channel in spec.channels)
    scan = _Scan(names, skipped={name: Counter() for name in names})
    for position, raw in enumerate(rows):
        scan.add(dict(zip(ROW_COLUMNS, plan.row(position, raw), strict=True)), limit)
    return scan


def _messages(spec: CampaignSpec, first: dict[str, Recipient]) -> tuple[PreviewMessage, ...]:
    return tuple(
        PreviewMessage(c.name, first[c.name].id, first[c.name].position, render_message(spec, c.name, first[c.name]))
        for c in spec.channels
        if c.name in first
    )


def _checked_limit(limit: int) -> int:
    if not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"the limit must be between 0 and {MAX_LIMIT} rows, got {limit}")
    return limit


def preview_audience(spec: CampaignSpec, limit: int = DEFAULT_LIMIT) -> AudiencePreview:
    """``spec``'s audience read now; an ``AudienceSourceError`` (the database's message) when it cannot be read."""
    limit = _checked_limit(limit)
    if spec.audience.is_demo:
        return _demo_preview(spec, limit)
    if spec.audience.conn_id:
        connection_of(spec.audience.conn_id)
    source = _bounded(source_for(spec.audience), PREVIEW_SECONDS)
    values = bindings(preview_slot(), PREVIEW_RUN_ID, {})
    columns = source.columns(values)  # first: a query that is no SELECT fails here, before any row is read
    scan = _scan(spec, source.rows(values), limit)
    return AudiencePreview(
        campaign=spec.id,
        source=spec.audience.source,
        label=source.label,
        count=scan.count,
        columns=tuple(columns),
        rows=tuple(scan.rows),
        sendable={c: scan.count - sum(counts.values()) for c, counts in scan.skipped.items()},
        skipped={c: dict(counts) for c, counts in scan.skipped.items()},
        messages=_messages(spec, scan.first),
        problems=tuple(str(problem) for problem in _problems(spec, columns)),
    )


def _demo_preview(spec: CampaignSpec, limit: int) -> AudiencePreview:
    """The synthetic recipients a run started now would generate; nobody is skipped."""
    from campaign_runs.factory.about import DEMO_LABEL

    audience = spec.audience
    plan = plan_audience(
        campaign=spec.id,
        segment=audience.segment,
        criteria=audience.criteria,
        size=audience.size,
        population=audience.population,
        rotate_per_slot=audience.rotate_per_slot,
        slot=preview_slot(),
        restart_of=None,
    )
    recipients = [make_recipient(plan, position) for position in range(min(limit, plan.size))]
    channels = [channel.name for channel in spec.channels]
    rows = tuple(
        PreviewRow(r.position, r.id, r.email, r.phone, r.push_token, dict.fromkeys(channels), dict(r.values))
        for r in recipients
    )
    first = make_recipient(plan, 0) if plan.size else None
    return AudiencePreview(
        campaign=spec.id,
        source="demo",
        label=DEMO_LABEL,
        count=plan.size,
        columns=(*RECIPIENT_PLACEHOLDERS[:1], *ADDRESS_FIELDS.values(), *(first.values if first else ())),
        rows=rows,
        sendable=dict.fromkeys(channels, plan.size),
        skipped={channel: {} for channel in channels},
        messages=_messages(spec, dict.fromkeys(channels, first)) if first else (),
        problems=(),
    )
