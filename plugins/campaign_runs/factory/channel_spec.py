"""A campaign's ``channels:``: each channel's transport, Connection, delivery (live or dry run) and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaign_runs.factory.addresses import is_email_address
from campaign_runs.factory.channels import ChannelAdapter
from campaign_runs.factory.fields import COLUMN_PATTERN, ID_PATTERN, Fields, shown
from campaign_runs.factory.guard import SETTING as GUARD_SETTING
from campaign_runs.factory.guard import GuardSpec
from campaign_runs.factory.transports import DRY_RUN

LIVE = "live"
DELIVERIES = (LIVE, DRY_RUN)
DRY_RUN_LABEL = "dry run"
DEFAULT_BATCH_SIZE = 500
MAX_CONNECTIONS = 32
MAX_SHARDS = 64
HYGIENE_CHANNELS = {"email": "email", "sms": "sms", "push": "push"}  # the channels the audience snapshot checks
ADDRESS_CHANNELS = {"email": "email", "phone": "sms", "push_token": "push"}  # a recipient field -> its channel
CHANNEL_COMMON_FIELDS = frozenset({"batch_size", "rate_limit_per_second", "connections", "shards", "consent_column"})
CHANNEL_COMMON_FIELDS |= {"transport", "conn_id", "delivery"}


@dataclass(frozen=True)
class ChannelSpec:
    """One delivery channel with its batch size, rate limit and adapter settings."""

    name: str
    batch_size: int
    rate_limit_per_second: float
    settings: dict[str, Any]
    connections: int = 1
    shards: int = 1
    consent_column: str = ""  # this channel's own consent column, checked with the audience's
    transport: str = ""  # smtp, ses, sns, twilio, fcm, http, dry_run ("" = the channel's first: smtp or dry_run)
    conn_id: str = ""  # the transport's Connection ("" = the transport's default)
    delivery: str = LIVE  # live | dry_run (the campaign's dry_run makes every channel one)

    @property
    def dry_run(self) -> bool:
        """True when nothing is sent: messages go to the local JSON-lines sink."""
        return self.delivery == DRY_RUN or self.transport == DRY_RUN

    @property
    def hygiene_channel(self) -> str | None:
        """The channel whose address and consent checks decide who this channel reaches (None: nobody's)."""
        if self.name in HYGIENE_CHANNELS:
            return self.name
        return HYGIENE_CHANNELS.get(ADDRESS_CHANNELS.get(str(self.settings.get("address_field", "")), ""))

    @property
    def adapter_transport(self) -> str:
        """The transport the channel task delivers through (``dry_run`` for a dry run)."""
        return DRY_RUN if self.dry_run else self.transport

    @property
    def delivery_label(self) -> str:
        """How the channel delivers, as the pages say it: ``sns``, ``sns (dry run)``, ``dry run``."""
        if not self.dry_run:
            return self.transport
        return DRY_RUN_LABEL if self.transport in ("", DRY_RUN) else f"{self.transport} ({DRY_RUN_LABEL})"


def _guard(fields: Fields) -> dict[str, Any] | None:
    """The channel's ``guard`` thresholds, validated (``campaign_runs.factory.guard``); None when it declares none."""
    value = fields.raw(GUARD_SETTING, required=False)
    if value is None:
        return None
    try:
        return GuardSpec.parse(value).as_setting()
    except ValueError as error:
        name, _, message = str(error).partition(": ")
        raise fields.error(f"{GUARD_SETTING}.{name}".rstrip("."), message) from error


def delivery(fields: Fields, default: str = LIVE) -> str:
    delivery = fields.text("delivery", required=False, default=default, one_line=True)
    if delivery not in DELIVERIES:
        raise fields.error("delivery", f"{shown(delivery)} must be live or dry_run")
    return delivery


def _transport(fields: Fields, name: str) -> type[ChannelAdapter]:
    """The adapter of channel ``name`` over its declared ``transport`` (its first one when none is declared)."""
    transport = fields.text("transport", required=False, default=ChannelAdapter.registry[name].transport)
    try:
        return ChannelAdapter.for_transport(name, transport)
    except KeyError:
        known = ", ".join(sorted(t for c, t in ChannelAdapter.transports if c == name))
        raise fields.error("transport", f"{shown(transport)} is not a transport of {name} (known: {known})") from None


def _channel(root: Fields, name: str, settings: Any, campaign_delivery: str) -> ChannelSpec:
    base = ChannelAdapter.registry[name]
    raw = settings if settings is not None else {}
    probe = Fields(root.source, raw, f"channels.{name}.", frozenset(raw) if isinstance(raw, dict) else frozenset())
    adapter = _transport(probe, name)
    allowed = CHANNEL_COMMON_FIELDS | frozenset(base.required_settings) | frozenset(base.optional_settings)
    allowed |= {GUARD_SETTING} | frozenset(adapter.transport_settings)
    fields = Fields(root.source, raw, f"channels.{name}.", allowed)
    adapter_settings: dict[str, Any] = dict(base.optional_settings)
    for key in base.required_settings:
        adapter_settings[key] = fields.text(key, one_line=key in base.one_line_settings)
    for key in (*base.optional_settings, *adapter.transport_settings):
        if fields.data.get(key) is not None:
            adapter_settings[key] = fields.text(key, one_line=key in base.one_line_settings | adapter.one_line_settings)
    if adapter_settings.get("reply_to") and not is_email_address(adapter_settings["reply_to"]):
        raise fields.error("reply_to", f"{shown(adapter_settings['reply_to'])} is not an email address")
    for key, choices in adapter.setting_choices.items():
        if adapter_settings.get(key, adapter.transport_settings.get(key)) not in choices:
            raise fields.error(key, f"{shown(adapter_settings.get(key))} must be one of {', '.join(choices)}")
    try:
        adapter.validate(adapter_settings)
    except ValueError as error:
        setting, _, message = str(error).partition(": ")
        raise fields.error(setting, message) from error
    if name not in HYGIENE_CHANNELS and fields.data.get("consent_column"):
        raise fields.error("consent_column", f"is not read on {name}: the channel of its address_field decides")
    if adapter.requires_conn_id and not fields.data.get("conn_id"):
        raise fields.error("conn_id", f"is required: {name} over {adapter.transport} has no default Connection")
    if (guard := _guard(fields)) is not None:
        adapter_settings[GUARD_SETTING] = guard
    return ChannelSpec(
        name=name,
        batch_size=fields.integer("batch_size", default=DEFAULT_BATCH_SIZE, minimum=1),
        rate_limit_per_second=fields.number("rate_limit_per_second", default=0.0),
        settings=adapter_settings,
        connections=fields.bounded("connections", default=1, minimum=1, maximum=MAX_CONNECTIONS),
        shards=fields.bounded("shards", default=1, minimum=1, maximum=MAX_SHARDS),
        consent_column=fields.text("consent_column", required=False, pattern=COLUMN_PATTERN),
        transport=adapter.transport,
        conn_id=fields.text("conn_id", required=False, pattern=ID_PATTERN),
        delivery=DRY_RUN if campaign_delivery == DRY_RUN else delivery(fields),
    )


def channel_specs(root: Fields, campaign_delivery: str) -> tuple[ChannelSpec, ...]:
    raw = root.raw("channels", required=True)
    if not isinstance(raw, dict) or not raw:
        raise root.error("channels", "must map at least one channel name (email, sms, push) to its settings")
    channels = []
    for name, settings in raw.items():
        if not isinstance(name, str) or name not in ChannelAdapter.registry:
            known = ", ".join(sorted(ChannelAdapter.registry))
            label = name if isinstance(name, str) and len(name) <= 60 else shown(name)
            raise root.error(f"channels.{label}", f"unknown channel (known: {known})")
        channels.append(_channel(root, name, settings, campaign_delivery))
    return tuple(channels)
