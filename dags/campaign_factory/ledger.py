"""Delivery ledger: who was reached, per (campaign, slot, channel, recipient), outside Airflow's DB."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from campaign_factory.audience import Recipient

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    campaign  TEXT    NOT NULL,
    slot      TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    run_id    TEXT    NOT NULL,
    sent_at   TEXT    NOT NULL,
    PRIMARY KEY (campaign, slot, channel, recipient)
)
"""
LOOKUP_CHUNK = 500


class DeliveryLedger:
    """A SQLite file per campaign (``<sink_dir>/<campaign>/ledger.sqlite``), written once per batch."""

    def __init__(self, path: Path, campaign: str, slot: str, channel: str) -> None:
        self.path = path
        self.campaign = campaign
        self.slot = slot
        self.channel = channel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute(SCHEMA)

    @classmethod
    def for_campaign(cls, sink_dir: Path, campaign: str, slot: str, channel: str) -> DeliveryLedger:
        """The ledger of one campaign, slot and channel under the sink directory."""
        return cls(sink_dir / campaign / "ledger.sqlite", campaign, slot, channel)

    def close(self) -> None:
        """Close the SQLite connection."""
        self.connection.close()

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reached_count(self, audience_size: int) -> int:
        """How many of the first ``audience_size`` recipients were already reached in this slot."""
        row = self.connection.execute(
            "SELECT COUNT(*) FROM deliveries WHERE campaign=? AND slot=? AND channel=? AND position<?",
            (self.campaign, self.slot, self.channel, audience_size),
        ).fetchone()
        return int(row[0])

    def already_reached(self, recipient_ids: Sequence[str]) -> set[str]:
        """The subset of ``recipient_ids`` already reached in this slot."""
        found: set[str] = set()
        for start in range(0, len(recipient_ids), LOOKUP_CHUNK):
            chunk = recipient_ids[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT recipient FROM deliveries WHERE campaign=? AND slot=? AND channel=? "
                f"AND recipient IN ({marks})",
                (self.campaign, self.slot, self.channel, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    def record(self, recipients: Iterable[Recipient], run_id: str) -> int:
        """Record delivered recipients in one transaction; returns how many rows were new."""
        now = dt.datetime.now(dt.UTC).isoformat()
        rows = [(self.campaign, self.slot, self.channel, r.id, r.position, run_id, now) for r in recipients]
        if not rows:
            return 0
        with self.connection:
            self.connection.execute("BEGIN IMMEDIATE")
            before = self.connection.total_changes
            self.connection.executemany("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return self.connection.total_changes - before

    def runs(self) -> dict[str, int]:
        """Deliveries per run id in this slot and channel."""
        rows = self.connection.execute(
            "SELECT run_id, COUNT(*) FROM deliveries WHERE campaign=? AND slot=? AND channel=? GROUP BY run_id",
            (self.campaign, self.slot, self.channel),
        )
        return {row[0]: int(row[1]) for row in rows}
