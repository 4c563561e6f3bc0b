"""Campaign declarations: the YAML schema, parsed and validated into typed specs."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from campaign_runs.factory.channels import ChannelAdapter
from campaign_runs.factory.guard import SETTING as GUARD_SETTING
from campaign_runs.factory.guard import GuardSpec
from campaign_runs.factory.schedule import is_manual, validate_cron

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DEFAULT_BATCH_SIZE = 500
DEFAULT_AUDIENCE_SIZE = 5000
DEFAULT_POPULATION = 10_000_000


class CampaignSpecError(ValueError):
    """A campaign file that cannot be turned into a DAG; names the file and the field."""

    def __init__(self, source: Path, field_name: str, message: str) -> None:
        self.source = source
        self.field_name = field_name
        self.message = message
        where = f"field '{field_name}'" if field_name else "file"
        super().__init__(f"Campaign file {source}: {where}: {message}")


@dataclass(frozen=True)
class ScheduleSpec:
    """When a campaign runs: cron expression or preset (None = manual), timezone, start, catchup."""

    expression: str | None
    timezone: str
    start_date: dt.datetime
    catchup: bool


@dataclass(frozen=True)
class AudienceSpec:
    """A segment definition from which recipients are generated."""

    segment: str
    description: str
    criteria: dict[str, Any]
    size: int
    population: int
    rotate_per_slot: bool


@dataclass(frozen=True)
class ChannelSpec:
    """One delivery channel with its batch size, rate limit and adapter settings."""

    name: str
    batch_size: int
    rate_limit_per_second: float
    settings: dict[str, Any]
    connections: int = 1
    shards: int = 1


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

    def channel(self, name: str) -> ChannelSpec:
        """The channel called ``name``."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


class _Fields:
    """Reads one mapping of the YAML document and reports errors with the dotted field name."""

    def __init__(self, source: Path, data: Any, prefix: str, allowed: frozenset[str]) -> None:
        self.source = source
        self.prefix = prefix
        if not isinstance(data, dict):
            raise CampaignSpecError(source, prefix.rstrip(".") or "", "expected a mapping of fields")
        unknown = sorted(str(key) for key in data if key not in allowed)
        if unknown:
            raise CampaignSpecError(
                source, prefix + unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
        self.data: dict[str, Any] = data

    def error(self, name: str, message: str) -> CampaignSpecError:
        """An error about field ``name`` of this mapping."""
        return CampaignSpecError(self.source, self.prefix + name, message)

    def raw(self, name: str, *, required: bool) -> Any:
        """The value of ``name``; raises when it is required and missing."""
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.error(name, "is required")
            return None
        return self.data[name]

    def text(
        self, name: str, *, required: bool = True, default: str = "", pattern: re.Pattern[str] | None = None
    ) -> str:
        """A non-empty string field."""
        value = self.raw(name, required=required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.error(name, f"{value!r} does not match {pattern.pattern}")
        return value.strip()

    def integer(self, name: str, *, default: int, minimum: int) -> int:
        """An integer field with a lower bound."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value}")
        return value

    def bounded(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        """An integer field between two bounds."""
        value = self.integer(name, default=default, minimum=minimum)
        if value > maximum:
            raise self.error(name, f"must be at most {maximum}, got {value}")
        return value

    def number(self, name: str, *, default: float) -> float:
        """A non-negative number field."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(name, f"must be a number >= 0, got {value!r}")
        return float(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        """A true/false field."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {value!r}")
        return value

    def sub(self, name: str, allowed: frozenset[str]) -> _Fields:
        """The nested mapping ``name``."""
        return _Fields(self.source, self.raw(name, required=True), f"{self.prefix}{name}.", allowed)


TOP_FIELDS = frozenset({"id", "description", "owner", "owner_email", "schedule", "audience", "channels", "tags"})
SCHEDULE_FIELDS = frozenset({"cron", "timezone", "start_date", "catchup"})
AUDIENCE_FIELDS = frozenset({"segment", "description", "criteria", "size", "population", "rotate_per_slot"})
CHANNEL_COMMON_FIELDS = frozenset({"batch_size", "rate_limit_per_second", "connections", "shards"})
MAX_CONNECTIONS = 32
MAX_SHARDS = 64


def _start_date(fields: _Fields, timezone: str) -> dt.datetime:
    value = fields.raw("start_date", required=True)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as error:
            raise fields.error("start_date", f"not an ISO 8601 date: {value!r}") from error
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        raise fields.error("start_date", f"must be a date such as 2025-01-06, got {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment


def _schedule(root: _Fields) -> ScheduleSpec:
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
        start_date=_start_date(fields, timezone),
        catchup=fields.boolean("catchup", default=False),
    )


def _audience(root: _Fields) -> AudienceSpec:
    fields = root.sub("audience", AUDIENCE_FIELDS)
    criteria = fields.raw("criteria", required=False) or {}
    if not isinstance(criteria, dict):
        raise fields.error("criteria", "must be a mapping of attribute: value")
    population = fields.integer("population", default=DEFAULT_POPULATION, minimum=1)
    size = fields.integer("size", default=min(DEFAULT_AUDIENCE_SIZE, population), minimum=0)
    if size > population:
        raise fields.error("size", f"{size} is larger than the population ({population})")
    return AudienceSpec(
        segment=fields.text("segment", pattern=SEGMENT_PATTERN),
        description=fields.text("description", required=False, default=""),
        criteria={str(key): value for key, value in criteria.items()},
        size=size,
        population=population,
        rotate_per_slot=fields.boolean("rotate_per_slot", default=False),
    )


def _guard(fields: _Fields) -> dict[str, Any] | None:
    """The channel's ``guard`` thresholds, validated (``campaign_runs.factory.guard``); None when it declares none."""
    value = fields.raw(GUARD_SETTING, required=False)
    if value is None:
        return None
    try:
        return GuardSpec.parse(value).as_setting()
    except ValueError as error:
        name, _, message = str(error).partition(": ")
        raise fields.error(f"{GUARD_SETTING}.{name}".rstrip("."), message) from error


def _channels(root: _Fields) -> tuple[ChannelSpec, ...]:
    raw = root.raw("channels", required=True)
    if not isinstance(raw, dict) or not raw:
        raise root.error("channels", "must map at least one channel name (email, sms, push) to its settings")
    channels = []
    for name, settings in raw.items():
        adapter = ChannelAdapter.registry.get(str(name))
        if adapter is None:
            known = ", ".join(sorted(ChannelAdapter.registry))
            raise root.error(f"channels.{name}", f"unknown channel (known: {known})")
        allowed = CHANNEL_COMMON_FIELDS | frozenset(adapter.required_settings) | frozenset(adapter.optional_settings)
        allowed |= {GUARD_SETTING}
        fields = _Fields(root.source, settings if settings is not None else {}, f"channels.{name}.", allowed)
        adapter_settings: dict[str, Any] = dict(adapter.optional_settings)
        for key in adapter.required_settings:
            adapter_settings[key] = fields.text(key)
        for key in adapter.optional_settings:
            if fields.data.get(key) is not None:
                adapter_settings[key] = fields.data[key]
        if (guard := _guard(fields)) is not None:
            adapter_settings[GUARD_SETTING] = guard
        channels.append(
            ChannelSpec(
                name=str(name),
                batch_size=fields.integer("batch_size", default=DEFAULT_BATCH_SIZE, minimum=1),
                rate_limit_per_second=fields.number("rate_limit_per_second", default=0.0),
                settings=adapter_settings,
                connections=fields.bounded("connections", default=1, minimum=1, maximum=MAX_CONNECTIONS),
                shards=fields.bounded("shards", default=1, minimum=1, maximum=MAX_SHARDS),
            )
        )
    return tuple(channels)


def parse_spec(data: Any, source: Path) -> CampaignSpec:
    """Validate a loaded YAML document into a ``CampaignSpec``."""
    root = _Fields(source, data, "", TOP_FIELDS)
    tags = root.raw("tags", required=False) or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise root.error("tags", "must be a list of strings")
    return CampaignSpec(
        id=root.text("id", pattern=ID_PATTERN),
        description=root.text("description"),
        owner=root.text("owner"),
        owner_email=root.text("owner_email", pattern=EMAIL_PATTERN),
        schedule=_schedule(root),
        audience=_audience(root),
        channels=_channels(root),
        source=source,
        tags=tuple(tags),
    )


def load_spec(path: Path) -> CampaignSpec:
    """Read and validate one campaign YAML file."""
    if not path.is_file():
        raise CampaignSpecError(path, "", "campaign file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CampaignSpecError(path, "", f"invalid YAML: {error}") from error
    return parse_spec(data, path)
