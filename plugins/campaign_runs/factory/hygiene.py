"""Audience hygiene: which rows a channel may send to (address valid, consent given), decided per row."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.addresses import EMAIL_MAX, is_email_address

if TYPE_CHECKING:
    from campaign_runs.factory.spec import AudienceSpec

ADDRESS_FIELDS = {"email": "email", "sms": "phone", "push": "push_token"}  # channel -> the recipient field it sends to
SKIP_COLUMNS = {channel: f"skip_{channel}" for channel in ADDRESS_FIELDS}
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
PHONE_PUNCTUATION = re.compile(r"[\s().-]")
# is_email_address of an ASCII address in one match: a local part of 1 to 64 characters, dot-separated runs of what
# it may hold; labels of letters, digits, inner hyphens and underscores, at most 63 characters, two or more.
ASCII_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
ASCII_LOCAL = r'[^\x00-\x20\x7f<>,;:"()\[\]\\@.]+'
ASCII_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){ASCII_LOCAL}(?:\.{ASCII_LOCAL})*@{ASCII_LABEL}(?:\.{ASCII_LABEL})+")
MAX_PUSH_TOKEN = 4096
MAX_SHAPES = 64  # column lists a plan keeps worked out
FALSE_WORDS = frozenset({"", "0", "false", "f", "no", "n", "off", "none", "null"})
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
# Reasons a row is skipped for a channel, as run details show them.
NO_ID, INVALID, MISSING, NO_CONSENT, DUPLICATE = "no_id", "invalid_address", "no_address", "no_consent", "duplicate"
# Marks the database leaves for Python (``snapshot_sql``): an address it does not decide, with consent given or not.
CHECK, CHECK_NO_CONSENT = "campaign_runs:check", "campaign_runs:check:no_consent"


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


def decided(channel: str, address: str, skip: str | None) -> str | None:
    """The skip reason of a row the database marked (``CHECK``): the address's problem, else the consent's."""
    if skip not in (CHECK, CHECK_NO_CONSENT):
        return skip
    return address_problem(channel, address) or (NO_CONSENT if skip == CHECK_NO_CONSENT else None)


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
    shapes: dict[tuple[str, ...], Shape] = field(default_factory=dict, compare=False, repr=False)  # by column names

    @classmethod
    def of(cls, audience: AudienceSpec, channels: Iterable[Any]) -> SnapshotPlan:
        """The plan of a campaign's audience and channels (``ChannelSpec``s)."""
        channels = list(channels)
        return cls(
            columns=dict(audience.columns),
            channels=tuple(dict.fromkeys(c.hygiene_channel or c.name for c in channels)),  # a webhook: its address's
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

    def rows_of(self, chunks: Iterable[tuple[tuple[str, ...], Sequence[Sequence[Any]]]]) -> Iterator[tuple[Any, ...]]:
        """The snapshot rows of source rows given as chunks of (column names, rows of their values)."""
        position = 0
        for names, chunk in chunks:
            yield from self.rows(names, position, chunk)
            position += len(chunk)

    def row(self, position: int, raw: dict[str, Any]) -> tuple[Any, ...]:
        """The snapshot row of source row ``raw`` at ``position``: addresses, skip reasons, template values."""
        return next(self.rows(tuple(raw), position, (tuple(raw.values()),)))

    def rows(self, names: tuple[str, ...], first: int, rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
        """``row`` of each of ``rows`` (tuples of the values of ``names``; a name twice: its last), from ``first``."""
        if (shape := self.shapes.get(names)) is None:
            if len(self.shapes) >= MAX_SHAPES:  # JSON lines each with other keys: memory stays flat
                self.shapes.clear()
            shape = self.shapes[names] = Shape.of(self, names)
        index, consent, channels, keys, pick, encode = (
            shape.index, shape.consent, shape.channels, shape.keys, shape.pick, shape.encode
        )  # fmt: skip
        for position, values in enumerate(rows, first):
            row = (*values, None)  # index len(names): a column the row lacks
            recipient = "" if (value := row[index[0]]) is None else str(value).strip()
            email = "" if (value := row[index[1]]) is None else str(value).strip()
            phone = "" if (value := row[index[2]]) is None else PHONE_PUNCTUATION.sub("", str(value).strip())
            push = "" if (value := row[index[3]]) is None else str(value).strip()
            addresses = (email, phone, push)
            allowed = consent < 0 or consents(row[consent])
            skips: list[str | None] = [None, None, None]
            for n, own in channels:
                if not recipient:
                    skips[n] = NO_ID
                elif (problem := PROBLEMS[n](addresses[n])) is not None:
                    skips[n] = problem
                elif not allowed or (own >= 0 and not consents(row[own])):
                    skips[n] = NO_CONSENT
            yield (
                position,
                recipient or f"#{position}",
                email,
                phone,
                push,
                *skips,
                encode(dict(zip(keys, pick(row), strict=True))),
            )


def _email_problem(address: str) -> str | None:
    """``address_problem`` of an email: a regular expression decides an ASCII address, ``is_email_address`` others."""
    if not address:
        return MISSING
    if address.isascii():
        return None if len(address) <= EMAIL_MAX and ASCII_EMAIL.fullmatch(address) else INVALID
    return None if is_email_address(address) else INVALID


PROBLEMS: tuple[Callable[[str], str | None], ...] = (
    _email_problem,
    lambda address: address_problem("sms", address),
    lambda address: address_problem("push", address),
)


@dataclass(frozen=True)
class Shape:
    """Where a plan finds each value in the rows of given column names, and how it writes the template values."""

    keys: tuple[str, ...]  # template values, in json.dumps's order
    pick: Callable[[Sequence[Any]], Sequence[Any]]  # their values in a row
    index: tuple[int, int, int, int]  # of the id, the email, the phone, the push token
    consent: int  # of the audience's consent column (-1: none)
    channels: tuple[tuple[int, int], ...]  # (channel number, index of its own consent column or -1)
    encode: Callable[[dict[str, Any]], str]

    @classmethod
    def of(cls, plan: SnapshotPlan, names: tuple[str, ...]) -> Shape:
        """The shape of rows of ``names`` under ``plan``: the mapping of ``SnapshotPlan.row`` worked out once."""
        found = {name: n for n, name in enumerate(names)}
        values = {name: found[name] for name in names}
        for name, column in plan.columns.items():
            values[name] = found.get(column, len(names))  # len(names): the None a row ends with
        index = tuple(values.pop(name, len(names)) for name in ("id", *ADDRESS_FIELDS.values()))
        consent = found.get(plan.consent_column, len(names)) if plan.consent_column else -1
        channels = tuple(
            (n, found.get(own, len(names)) if (own := plan.channel_consent.get(channel)) else -1)
            for n, channel in enumerate(ADDRESS_FIELDS)
            if channel in plan.channels
        )
        picked = tuple(values.values())
        pick = itemgetter(*picked) if len(picked) > 1 else (lambda row: tuple(row[i] for i in picked))
        return cls(tuple(values), pick, index, consent, channels, _encoder())  # type: ignore[arg-type]


def _encoder() -> Callable[[dict[str, Any]], str]:
    """``json.dumps(values, ensure_ascii=False, default=str)``, its C encoder made once, not once per row."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, default=str).encode
    encode = make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda values: "".join(encode(values, 0))
