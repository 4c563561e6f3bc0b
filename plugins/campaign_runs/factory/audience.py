"""A run's slot and recipients; the demo source: synthetic recipients generated lazily from a segment and a slot."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any, Protocol

from campaign_runs.factory.keys import RESTART_OF_KEY, RESTART_SLOT_KEY

FIRST_NAMES = (
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas",
    "Karin", "Léo", "Maya", "Nils", "Olga", "Pablo", "Quentin", "Rosa", "Sami", "Tess",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Schmidt", "Rossi", "Garcia", "Novak", "Jensen", "Silva", "Moreau",
    "Keller", "Costa", "Lambert", "Weber", "Fontaine", "Meyer", "Ricci", "Lopez", "Nowak", "Olsen",
)  # fmt: skip
DEFAULT_COUNTRIES = ("FR", "DE", "BE", "ES", "IT", "NL")
EMAIL_DOMAIN = "example.com"


@dataclass(frozen=True)
class RunSlot:
    """The schedule slot a run serves; a restart run carries the original run's slot."""

    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    run_id: str

    @property
    def key(self) -> str:
        """Stable identifier of the slot, used by the audience and the delivery ledger."""
        if self.logical_date:
            return f"logical:{self.logical_date}"
        if self.data_interval_start or self.data_interval_end:
            return f"interval:{self.data_interval_start}/{self.data_interval_end}"
        return f"run:{self.run_id}"

    def as_dict(self) -> dict[str, str | None]:
        """The ``campaign_slot`` form carried in a restart run's conf."""
        return {
            "logical_date": self.logical_date,
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
        }


def normalise_instant(value: Any) -> str | None:
    """An ISO 8601 UTC string for a datetime or an ISO string; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        raise ValueError(f"not a date-time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return str(value.astimezone(dt.UTC).isoformat())


def slot_for_run(
    *,
    run_id: str,
    conf: dict[str, Any] | None,
    logical_date: Any,
    data_interval_start: Any,
    data_interval_end: Any,
) -> tuple[RunSlot, str | None]:
    """The run's slot and the run it restarts (if any), from its conf or its own dates."""
    conf = conf or {}
    restart_of = conf.get(RESTART_OF_KEY)
    if restart_of:
        slot = conf.get(RESTART_SLOT_KEY) or {}
        if not isinstance(slot, dict):
            raise ValueError(f"conf '{RESTART_SLOT_KEY}' must be a mapping")
        return (
            RunSlot(
                logical_date=normalise_instant(slot.get("logical_date")),
                data_interval_start=normalise_instant(slot.get("data_interval_start")),
                data_interval_end=normalise_instant(slot.get("data_interval_end")),
                run_id=str(restart_of),
            ),
            str(restart_of),
        )
    return (
        RunSlot(
            logical_date=normalise_instant(logical_date),
            data_interval_start=normalise_instant(data_interval_start),
            data_interval_end=normalise_instant(data_interval_end),
            run_id=run_id,
        ),
        None,
    )


@dataclass(frozen=True)
class Recipient:
    """One recipient of a run: the ledger's key, the channel addresses and every template value."""

    id: str
    position: int
    email: str = ""
    phone: str = ""
    push_token: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """Flat mapping used by message templates: the source's columns, then id, position and the addresses."""
        return {
            **self.values,
            "id": self.id,
            "position": self.position,
            "email": self.email,
            "phone": self.phone,
            "push_token": self.push_token,
        }


@dataclass(frozen=True)
class Shard:
    """Which recipients a task of a sharded channel owns: positions ``p`` with ``p % count == index``."""

    index: int = 0
    count: int = 1

    @property
    def where(self) -> str:
        """The condition on ``position`` (empty for the whole audience)."""
        return " AND position % ? = ?" if self.count > 1 else ""

    @property
    def params(self) -> tuple[int, ...]:
        """The parameters of ``where``."""
        return (self.count, self.index) if self.count > 1 else ()

    def size(self, audience_size: int) -> int:
        """How many of the first ``audience_size`` positions belong to this shard."""
        return len(range(self.index, audience_size, self.count))


WHOLE = Shard()


class Audience(Protocol):
    """What a channel task reads its recipients from: the demo plan, or a run's snapshot."""

    @property
    def size(self) -> int:
        """Positions in the audience (skipped rows included)."""

    def batches(self, batch_size: int, shard: Shard = WHOLE) -> Iterator[list[Recipient]]:
        """The recipients to send to, in position order, ``batch_size`` at a time."""

    def at(self, positions: Sequence[int]) -> list[Recipient]:
        """The recipients at ``positions``."""

    def skipped(self, shard: Shard = WHOLE) -> dict[str, int]:
        """Recipients of ``shard`` not sent to on this channel, by reason."""


@dataclass(frozen=True)
class AudiencePlan:
    """What ``build_audience`` hands to the channel tasks: a small recipe, never the recipients."""

    campaign: str
    segment: str
    criteria: dict[str, Any]
    size: int
    population: int
    offset: int
    slot: RunSlot
    restart_of: str | None

    def to_xcom(self) -> dict[str, Any]:
        """JSON-able form for XCom."""
        data = asdict(self)
        data["slot_key"] = self.slot.key
        return data

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> AudiencePlan:
        """Rebuild a plan from its XCom form."""
        return cls(
            campaign=data["campaign"],
            segment=data["segment"],
            criteria=dict(data["criteria"]),
            size=int(data["size"]),
            population=int(data["population"]),
            offset=int(data["offset"]),
            slot=RunSlot(**data["slot"]),
            restart_of=data.get("restart_of"),
        )

    def recipients(self, start: int = 0, shard: Shard = WHOLE) -> Iterator[Recipient]:
        """Recipients of ``shard`` from position ``start`` on, generated one at a time."""
        first = start + (shard.index - start) % shard.count
        for position in range(first, self.size, shard.count):
            yield make_recipient(self, position)

    def batches(self, batch_size: int, shard: Shard = WHOLE) -> Iterator[list[Recipient]]:
        """Consecutive batches of at most ``batch_size`` recipients (of ``shard``)."""
        iterator = self.recipients(shard=shard)
        while batch := list(islice(iterator, batch_size)):
            yield batch

    def at(self, positions: Sequence[int]) -> list[Recipient]:
        """The recipients at ``positions``, generated."""
        return [make_recipient(self, position) for position in positions]

    def skipped(self, shard: Shard = WHOLE) -> dict[str, int]:
        """The demo audience skips nobody."""
        return {}


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=16).digest()


def plan_audience(
    *,
    campaign: str,
    segment: str,
    criteria: dict[str, Any],
    size: int,
    population: int,
    rotate_per_slot: bool,
    slot: RunSlot,
    restart_of: str | None,
) -> AudiencePlan:
    """The audience of one slot: ``size`` members of the segment's population, rotated per slot if asked."""
    if size < 0 or size > population:
        raise ValueError(f"audience size {size} must be between 0 and the population ({population})")
    offset = int.from_bytes(_digest(campaign, segment, slot.key)[:8], "big") % population if rotate_per_slot else 0
    return AudiencePlan(
        campaign=campaign,
        segment=segment,
        criteria=criteria,
        size=size,
        population=population,
        offset=offset,
        slot=slot,
        restart_of=restart_of,
    )


def make_recipient(plan: AudiencePlan, position: int) -> Recipient:
    """The recipient at ``position`` of the plan: a pure function of segment, slot offset and position."""
    member = (plan.offset + position) % plan.population
    seed = _digest(plan.segment, member)
    first = FIRST_NAMES[seed[0] % len(FIRST_NAMES)]
    last = LAST_NAMES[seed[1] % len(LAST_NAMES)]
    countries = plan.criteria.get("countries") or DEFAULT_COUNTRIES
    country = str(countries[seed[2] % len(countries)])
    ascii_first = first.encode("ascii", "ignore").decode().lower()
    values: dict[str, Any] = {key: value for key, value in plan.criteria.items() if not isinstance(value, list | dict)}
    values.update(first_name=first, last_name=last, country=country)
    return Recipient(
        id=f"{plan.segment}-{member:08d}",
        position=position,
        email=f"{ascii_first}.{last.lower()}.{member}@{EMAIL_DOMAIN}",
        phone=f"+336{int.from_bytes(seed[3:7], 'big') % 100_000_000:08d}",
        push_token=seed.hex(),
        values=values,
    )
