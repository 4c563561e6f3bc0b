"""Campaign declarations: the YAML schema, parsed and validated into typed specs."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from campaign_runs.factory.addresses import is_email_address
from campaign_runs.factory.channel_spec import ChannelSpec as ChannelSpec  # re-exported
from campaign_runs.factory.channel_spec import channel_specs, delivery
from campaign_runs.factory.documents import DocumentError, document_problem, load_yaml
from campaign_runs.factory.fields import COLUMN_PATTERN, ID_PATTERN, Fields, Scalar, checked_text, scalar, shown
from campaign_runs.factory.fields import CampaignSpecError as CampaignSpecError  # re-exported: the loader's error
from campaign_runs.factory.schedule import is_manual, validate_cron

# Patterns are always used with fullmatch: "$" would also match before a final newline.
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
CRITERION_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LIST_MAX = 100  # items of a list field (tags, one criterion's values)
CRITERIA_MAX = 50
DEFAULT_AUDIENCE_SIZE = 5000
DEFAULT_POPULATION = 10_000_000


@dataclass(frozen=True)
class ScheduleSpec:
    """When a campaign runs: cron expression or preset (None = manual), timezone, start, catchup, not before."""

    expression: str | None
    timezone: str
    start_date: dt.datetime
    catchup: bool
    not_before: dt.datetime | None = None  # no scheduled run for an earlier slot (written by Create and Resume)


@dataclass(frozen=True)
class AudienceSpec:
    """Where a run's recipients come from: a SQL query, a file, or the synthetic demo generator."""

    segment: str
    description: str
    criteria: dict[str, Any]
    size: int
    population: int
    rotate_per_slot: bool
    source: str = "demo"  # sql | file | demo
    conn_id: str = ""
    query: str = ""
    url: str = ""
    format: str = ""  # csv | jsonl (file)
    columns: dict[str, str] = field(default_factory=dict)  # recipient field -> source column
    consent_column: str = ""
    timeout_seconds: int = 300

    @property
    def is_demo(self) -> bool:
        """True for the synthetic generator (examples and benchmarks only)."""
        return self.source == "demo"

    def column(self, name: str) -> str:
        """The source column that holds recipient field ``name``."""
        return self.columns.get(name, name)


@dataclass(frozen=True)
class CampaignSpec:
    """A whole campaign declaration."""

    id: str
    description: str
    owner: str
    owner_email: str
    schedule: ScheduleSpec
    audience: AudienceSpec
    channels: tuple[ChannelSpec, ...]
    source: Path
    tags: tuple[str, ...] = field(default=())
    delivery: str = "live"  # dry_run: no channel sends anything

    @property
    def dry_run(self) -> bool:
        """True when no channel of the campaign sends anything."""
        return all(channel.dry_run for channel in self.channels)

    def channel(self, name: str) -> ChannelSpec:
        """The channel called ``name``."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


TOP_FIELDS = frozenset(
    {"id", "description", "owner", "owner_email", "schedule", "audience", "channels", "tags", "delivery"}
)
SCHEDULE_FIELDS = frozenset({"cron", "timezone", "start_date", "catchup", "not_before"})
DEMO_FIELDS = frozenset({"segment", "criteria", "size", "population", "rotate_per_slot"})
AUDIENCE_FIELDS = DEMO_FIELDS | {"source", "description", "conn_id", "query", "url", "format", "columns"}
AUDIENCE_FIELDS |= {"consent_column", "timeout_seconds"}
SOURCE_FIELDS = {"sql": frozenset({"conn_id", "query"}), "file": frozenset({"url"}), "demo": frozenset({"segment"})}
AUDIENCE_SOURCES = tuple(SOURCE_FIELDS)
RECIPIENT_FIELDS = ("id", "email", "phone", "push_token")  # the recipient fields a column can be mapped onto
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_FILE_BYTES = 256 * 1024


def _moment(fields: Fields, name: str, timezone: str, *, required: bool) -> dt.datetime | None:
    value = fields.raw(name, required=required)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as error:
            raise fields.error(name, f"not an ISO 8601 date: {shown(value)}") from error
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        raise fields.error(name, f"must be a date such as 2025-01-06, got {shown(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment


def _schedule(root: Fields) -> ScheduleSpec:
    fields = root.sub("schedule", SCHEDULE_FIELDS)
    timezone = fields.text("timezone", required=False, default="UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a tzdata folder ("Europe"), a long name
        raise fields.error("timezone", f"unknown timezone {timezone!r}") from error
    if "cron" not in fields.data:
        raise fields.error("cron", "is required (a cron expression, a preset such as @hourly, or null)")
    cron = fields.data["cron"]
    expression: str | None
    if cron is None or (isinstance(cron, str) and is_manual(cron)):
        expression = None
    elif isinstance(cron, str):
        try:
            validate_cron(cron)
        except ValueError as error:
            raise fields.error("cron", str(error)) from error
        expression = cron.strip()
    else:
        raise fields.error("cron", f"must be a string or null, got {cron!r}")
    return ScheduleSpec(
        expression=expression,
        timezone=timezone,
        start_date=cast("dt.datetime", _moment(fields, "start_date", timezone, required=True)),
        catchup=fields.boolean("catchup", default=False),
        not_before=_moment(fields, "not_before", timezone, required=False),
    )


def _criteria(fields: Fields) -> dict[str, Scalar | list[Scalar]]:
    """``audience.criteria``: attribute names mapped to a scalar or a list of scalars, nothing nested."""
    raw = fields.raw("criteria", required=False) or {}
    if not isinstance(raw, dict):
        raise fields.error("criteria", "must be a mapping of attribute: value")
    if len(raw) > CRITERIA_MAX:
        raise fields.error("criteria", f"has {len(raw)} attributes; the limit is {CRITERIA_MAX}")
    criteria: dict[str, Scalar | list[Scalar]] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not CRITERION_PATTERN.fullmatch(key):
            raise fields.error("criteria", f"{shown(key)} is not an attribute name ({CRITERION_PATTERN.pattern})")
        name = f"criteria.{key}"

        def error(message: str, name: str = name) -> CampaignSpecError:
            return fields.error(name, message)

        if isinstance(value, list):
            if len(value) > LIST_MAX:
                raise error(f"has {len(value)} values; the limit is {LIST_MAX}")
            criteria[key] = [scalar(item, error) for item in value]
        elif value is None or isinstance(value, dict):
            raise error("must be a value (text, number, true/false) or a list of values")
        else:
            criteria[key] = scalar(value, error)
    return criteria


def _columns(fields: Fields) -> dict[str, str]:
    """``audience.columns``: recipient field (``id``, ``email``, ``first_name``...) -> the source's column name."""
    raw = fields.raw("columns", required=False) or {}
    if not isinstance(raw, dict):
        raise fields.error("columns", "must map recipient fields (id, email, phone, push_token...) to column names")
    if len(raw) > CRITERIA_MAX:
        raise fields.error("columns", f"maps {len(raw)} fields; the limit is {CRITERIA_MAX}")
    columns: dict[str, str] = {}
    for key, value in raw.items():
        for item in (key, value):
            if not isinstance(item, str) or not COLUMN_PATTERN.fullmatch(item):
                raise fields.error("columns", f"{shown(item)} is not a column name ({COLUMN_PATTERN.pattern})")
        columns[key] = value
    return columns


def _source(fields: Fields) -> str:
    source = fields.text("source", required=False, default="demo", one_line=True)
    if source not in SOURCE_FIELDS:
        raise fields.error("source", f"{shown(source)} is not an audience source ({', '.join(AUDIENCE_SOURCES)})")
    for name in SOURCE_FIELDS[source]:
        if source != "demo":
            fields.raw(name, required=True)
    if source != "demo" and (extra := sorted(name for name in DEMO_FIELDS if name in fields.data)):
        raise fields.error(extra[0], f"applies to the demo source only, not to source: {source}")
    return source


def _file_format(fields: Fields, url: str) -> str:
    declared = fields.text("format", required=False, one_line=True)
    if not declared:
        declared = (
            "jsonl" if url.lower().endswith((".jsonl", ".ndjson")) else "csv" if url.lower().endswith(".csv") else ""
        )
    if declared not in ("csv", "jsonl"):
        raise fields.error("format", "must be csv or jsonl (or the url must end in .csv, .jsonl or .ndjson)")
    return declared


def _audience(root: Fields) -> AudienceSpec:
    fields = root.sub("audience", AUDIENCE_FIELDS)
    source = _source(fields)
    criteria = _criteria(fields)
    population = fields.integer("population", default=DEFAULT_POPULATION, minimum=1)
    size = fields.integer("size", default=min(DEFAULT_AUDIENCE_SIZE, population), minimum=0)
    if size > population:
        raise fields.error("size", f"{size} is larger than the population ({population})")
    url = fields.text("url", required=False, one_line=True)
    if url and "://" not in url and not url.startswith("/"):
        url = (root.source.parent / url).resolve().as_uri()  # relative to the campaign's YAML file
    if url and not re.fullmatch(r"(file|s3)://\S+", url):
        raise fields.error("url", f"{shown(url)} must be a file:// or s3:// URL, or a path relative to this file")
    conn_id = fields.text("conn_id", required=False, pattern=ID_PATTERN)
    return AudienceSpec(
        segment=fields.text("segment", pattern=SEGMENT_PATTERN) if source == "demo" else source,
        description=fields.text("description", required=False, default=""),
        criteria=dict(criteria),
        size=size,
        population=population,
        rotate_per_slot=fields.boolean("rotate_per_slot", default=False),
        source=source,
        conn_id=conn_id,
        query=fields.text("query", required=False),
        url=url,
        format=_file_format(fields, url) if source == "file" else "",
        columns=_columns(fields),
        consent_column=fields.text("consent_column", required=False, pattern=COLUMN_PATTERN),
        timeout_seconds=fields.bounded("timeout_seconds", default=300, minimum=1, maximum=MAX_TIMEOUT_SECONDS),
    )


def _owner_email(root: Fields) -> str:
    value = root.text("owner_email", one_line=True)
    if not is_email_address(value):
        raise root.error("owner_email", f"{shown(value)} is not an email address (name@example.com)")
    return value


def parse_spec(data: Any, source: Path) -> CampaignSpec:
    """Validate a loaded YAML document into a ``CampaignSpec``."""
    root = Fields(source, data, "", TOP_FIELDS)
    tags = root.raw("tags", required=False) or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise root.error("tags", "must be a list of strings")
    if len(tags) > LIST_MAX:
        raise root.error("tags", f"has {len(tags)} tags; the limit is {LIST_MAX}")
    tags = [checked_text(tag, lambda message: root.error("tags", message), one_line=True) for tag in tags]
    campaign_delivery = delivery(root)

    spec = CampaignSpec(
        id=root.text("id", pattern=ID_PATTERN),
        description=root.text("description"),
        owner=root.text("owner", one_line=True),
        owner_email=_owner_email(root),
        schedule=_schedule(root),
        audience=_audience(root),
        channels=channel_specs(root, campaign_delivery),
        source=source,
        tags=tuple(tags),
        delivery=campaign_delivery,
    )
    for channel in spec.channels:
        if channel.hygiene_channel is None and not spec.audience.is_demo:
            raise root.error(
                f"channels.{channel.name}.address_field",
                "must be email, phone or push_token for an audience read from your data: the consent and address "
                "checks of that channel decide who this channel reaches",
            )
    return spec


def load_spec(path: Path) -> CampaignSpec:
    """Read and validate one campaign YAML file."""
    if not path.is_file():
        raise CampaignSpecError(path, "", "campaign file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CampaignSpecError(path, "", f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), max_bytes=MAX_FILE_BYTES)
    except (yaml.YAMLError, DocumentError, UnicodeDecodeError) as error:
        problem = f"not UTF-8 ({error.reason})" if isinstance(error, UnicodeDecodeError) else document_problem(error)
        raise CampaignSpecError(path, "", f"invalid YAML: {problem}") from None
    return parse_spec(data, path)
