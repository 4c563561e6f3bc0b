"""Audience hygiene: which rows a channel may send to (address valid, consent given), decided per row."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.addresses import is_email_address

if TYPE_CHECKING:
    from campaign_runs.factory.spec import AudienceSpec

ADDRESS_FIELDS = {"email": "email", "sms": "phone", "push": "push_token"}  # channel -> the recipient field it sends to
SKIP_COLUMNS = {channel: f"skip_{channel}" for channel in ADDRESS_FIELDS}
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
PHONE_PUNCTUATION = re.compile(r"[\s().-]")
MAX_PUSH_TOKEN = 4096
FALSE_WORDS = frozenset({"", "0", "false", "f", "no", "n", "off", "none", "null"})
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
# Reasons a row is skipped for a channel, as run details show them.
NO_ID, INVALID, MISSING, NO_CONSENT, DUPLICATE = "no_id", "invalid_address", "no_address", "no_consent", "duplicate"


def normalised_address(channel: str, value: Any) -> str:
    """The address as compared and sent: an email trimmed, a phone number without spaces or punctuation."""
    text = "" if value is None else str(value).strip()
    if channel == "sms":
        return PHONE_PUNCTUATION.sub("", text)
    return text


def address_problem(channel: str, address: str) -> str | None:
    """Why ``address`` cannot receive on ``channel`` (a skip reason), or None."""
    if not address:
        return MISSING
    if channel == "email":
        return None if is_email_address(address) else INVALID
    if channel == "sms":
        return None if E164.fullmatch(address) else INVALID
    return None if len(address) <= MAX_PUSH_TOKEN and address.isprintable() else INVALID


def consents(value: Any) -> bool:
    """Whether a consent column's value says yes; anything unclear is a no (nobody is sent to by doubt)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return str(value).strip().lower() in TRUE_WORDS if value is not None else False


@dataclass(frozen=True)
class SnapshotPlan:
    """How rows become recipients: the column mapping and the consent columns (audience-wide and per channel)."""

    columns: dict[str, str]
    channels: tuple[str, ...]
    consent_column: str = ""
    channel_consent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, audience: AudienceSpec, channels: Iterable[Any]) -> SnapshotPlan:
        """The plan of a campaign's audience and channels (``ChannelSpec``s)."""
        channels = list(channels)
        return cls(
            columns=dict(audience.columns),
            channels=tuple(c.name for c in channels),
            consent_column=audience.consent_column,
            channel_consent={c.name: c.consent_column for c in channels if c.consent_column},
        )

    def column(self, name: str) -> str:
        """The source column of recipient field ``name``."""
        return self.columns.get(name, name)

    def needed_columns(self) -> set[str]:
        """Columns every row must hold: the id, each channel's address, the consent columns."""
        needed = {self.column("id")}
        needed |= {self.column(ADDRESS_FIELDS[c]) for c in self.channels if c in ADDRESS_FIELDS}
        needed |= {c for c in (self.consent_column, *self.channel_consent.values()) if c}
        return needed

    def row(self, position: int, raw: dict[str, Any]) -> tuple[Any, ...]:
        """The snapshot row of source row ``raw`` at ``position``: addresses, skip reasons, template values."""
        values = dict(raw)
        for name, column in self.columns.items():
            values[name] = raw.get(column)
        recipient = "" if values.get("id") is None else str(values["id"]).strip()
        addresses = {kind: normalised_address(channel, values.get(kind)) for channel, kind in ADDRESS_FIELDS.items()}
        skips: dict[str, str | None] = {}
        for channel in ADDRESS_FIELDS:
            if channel not in self.channels:
                skips[channel] = None
                continue
            consent = self.channel_consent.get(channel)
            if not recipient:
                skips[channel] = NO_ID
            elif (problem := address_problem(channel, addresses[ADDRESS_FIELDS[channel]])) is not None:
                skips[channel] = problem
            elif (self.consent_column and not consents(raw.get(self.consent_column))) or (
                consent and not consents(raw.get(consent))
            ):
                skips[channel] = NO_CONSENT
            else:
                skips[channel] = None
        for name in ("id", *addresses):
            values.pop(name, None)
        return (
            position,
            recipient or f"#{position}",
            addresses["email"],
            addresses["phone"],
            addresses["push_token"],
            skips["email"],
            skips["sms"],
            skips["push"],
            json.dumps(values, ensure_ascii=False, default=str),
        )
