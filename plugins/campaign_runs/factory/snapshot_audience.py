"""One channel's view of a slot's snapshot: the rows it sends to, in position order, and the rows it skips."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from campaign_runs.factory.audience import WHOLE, Recipient, Shard
from campaign_runs.factory.hygiene import SKIP_COLUMNS
from campaign_runs.factory.snapshot import SnapshotStore


@dataclass
class SnapshotAudience:
    """One channel's view of a slot's snapshot: the rows it sends to, in position order, and the rows it skips."""

    store: SnapshotStore
    campaign: str
    slot: str
    channel: str
    size: int

    def __post_init__(self) -> None:
        self.scope = self.store.scope(self.campaign, self.slot)

    @property
    def skip_column(self) -> str:
        return SKIP_COLUMNS.get(self.channel, "NULL")

    def skipped(self, shard: Shard = WHOLE) -> dict[str, int]:
        """Rows of ``shard`` this channel skips, by reason."""
        rows = self.store.execute(
            f"SELECT {self.skip_column}, COUNT(*) FROM {self.scope.table} WHERE {self.scope.where} "
            f"AND {self.skip_column} IS NOT NULL{shard.where} GROUP BY {self.skip_column}",
            (*self.scope.params, *shard.params),
        )
        return {str(reason): int(count) for reason, count in rows}

    def eligible(self, shard: Shard = WHOLE) -> int:
        """Rows of ``shard`` this channel sends to."""
        return shard.size(self.size) - sum(self.skipped(shard).values())

    def batches(self, batch_size: int, shard: Shard = WHOLE) -> Iterator[list[Recipient]]:
        """Consecutive batches of the rows this channel sends to, read ``batch_size`` at a time (keyset paging)."""
        after = -1
        while True:
            rows = self.store.execute(
                f"SELECT position, recipient, email, phone, push_token, fields FROM {self.scope.table} "
                f"WHERE {self.scope.where} AND {self.skip_column} IS NULL AND position > ?{shard.where} "
                "ORDER BY position LIMIT ?",
                (*self.scope.params, after, *shard.params, batch_size),
            )
            if not rows:
                return
            yield [_recipient(row) for row in rows]
            after = int(rows[-1][0])

    def at(self, positions: Sequence[int]) -> list[Recipient]:
        """The recipients at ``positions`` (in that order)."""
        found: dict[int, Recipient] = {}
        for start in range(0, len(positions), 500):
            chunk = list(positions[start : start + 500])
            rows = self.store.execute(
                f"SELECT position, recipient, email, phone, push_token, fields FROM {self.scope.table} "
                f"WHERE {self.scope.where} AND position IN ({', '.join('?' * len(chunk))})",
                (*self.scope.params, *chunk),
            )
            found.update((int(row[0]), _recipient(row)) for row in rows)
        return [found[p] for p in positions if p in found]


def _recipient(row: Sequence[Any]) -> Recipient:
    return Recipient(
        id=str(row[1]), position=int(row[0]), email=row[2], phone=row[3], push_token=row[4], values=json.loads(row[5])
    )
