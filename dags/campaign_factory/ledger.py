"""Delivery ledger: who was reached, per (campaign, slot, channel, recipient), outside Airflow's DB.

A recipient is written ``pending`` (committed) right before its message leaves and turned ``sent`` after;
a ``pending`` row left by a killed process is a recipient *in doubt*: never sent again by a restart.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from campaign_factory.audience import Recipient

PENDING = "pending"
SENT = "sent"
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    campaign  TEXT    NOT NULL,
    slot      TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    run_id    TEXT    NOT NULL,
    sent_at   TEXT    NOT NULL,
    status    TEXT    NOT NULL DEFAULT 'sent',
    PRIMARY KEY (campaign, slot, channel, recipient)
)
"""
LOOKUP_CHUNK = 500
KEY = "campaign=? AND slot=? AND channel=?"


@dataclass(frozen=True)
class LedgerCounts:
    """Recipients of a slot and channel confirmed sent, and in doubt (claimed, never confirmed)."""

    sent: int = 0
    in_doubt: int = 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class DeliveryLedger:
    """A SQLite file per campaign (``<sink_dir>/<campaign>/ledger.sqlite``): one small transaction per message."""

    def __init__(self, path: Path, campaign: str, slot: str, channel: str) -> None:
        self.path = path
        self.campaign = campaign
        self.slot = slot
        self.channel = channel
        self.key = (campaign, slot, channel)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        # A commit is in the WAL (the OS's page cache) when it returns: it survives the process being killed.
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute(SCHEMA)
        columns = {row[1] for row in self.connection.execute("PRAGMA table_info(deliveries)")}
        if "status" not in columns:  # a ledger written before pending/sent: every row was a delivery
            self.connection.execute("ALTER TABLE deliveries ADD COLUMN status TEXT NOT NULL DEFAULT 'sent'")

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

    def counts(self, audience_size: int) -> LedgerCounts:
        """Sent and in-doubt recipients among the first ``audience_size`` of this slot and channel."""
        rows = self.connection.execute(
            f"SELECT status, COUNT(*) FROM deliveries WHERE {KEY} AND position<? GROUP BY status",
            (*self.key, audience_size),
        )
        by_status = {row[0]: int(row[1]) for row in rows}
        return LedgerCounts(sent=by_status.get(SENT, 0), in_doubt=by_status.get(PENDING, 0))

    def reached_count(self, audience_size: int) -> int:
        """How many of the first ``audience_size`` recipients were confirmed sent in this slot."""
        return self.counts(audience_size).sent

    def already_reached(self, recipient_ids: Sequence[str]) -> set[str]:
        """The subset of ``recipient_ids`` with a row in this slot, sent or in doubt: none is sent again."""
        found: set[str] = set()
        for start in range(0, len(recipient_ids), LOOKUP_CHUNK):
            chunk = recipient_ids[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT recipient FROM deliveries WHERE {KEY} AND recipient IN ({marks})", (*self.key, *chunk)
            )
            found.update(row[0] for row in rows)
        return found

    def claim(
        self, recipient: Recipient, run_id: str, *, confirm: Iterable[str] = (), release: Iterable[str] = ()
    ) -> bool:
        """In one transaction: settle earlier messages, then write ``recipient`` pending; False if it has a row."""
        with self.connection:
            self.connection.execute("BEGIN IMMEDIATE")
            self._settle(confirm, release)
            before = self.connection.total_changes
            self.connection.execute(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*self.key, recipient.id, recipient.position, run_id, _now(), PENDING),
            )
            return self.connection.total_changes > before

    def settle(self, confirm: Iterable[str] = (), release: Iterable[str] = ()) -> None:
        """Turn the pending rows of ``confirm`` into ``sent`` and delete those of ``release`` (refused)."""
        confirm, release = list(confirm), list(release)
        if not confirm and not release:
            return
        with self.connection:
            self.connection.execute("BEGIN IMMEDIATE")
            self._settle(confirm, release)

    def _settle(self, confirm: Iterable[str], release: Iterable[str]) -> None:
        now = _now()
        self.connection.executemany(
            f"UPDATE deliveries SET status='{SENT}', sent_at=? WHERE {KEY} AND recipient=? AND status='{PENDING}'",
            [(now, *self.key, recipient_id) for recipient_id in confirm],
        )
        self.connection.executemany(
            f"DELETE FROM deliveries WHERE {KEY} AND recipient=? AND status='{PENDING}'",
            [(*self.key, recipient_id) for recipient_id in release],
        )

    def record(self, recipients: Iterable[Recipient], run_id: str) -> int:
        """Record recipients as sent in one transaction (no pending step); returns how many rows were new."""
        now = _now()
        rows = [(*self.key, r.id, r.position, run_id, now, SENT) for r in recipients]
        if not rows:
            return 0
        with self.connection:
            self.connection.execute("BEGIN IMMEDIATE")
            before = self.connection.total_changes
            self.connection.executemany("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return self.connection.total_changes - before

    def in_doubt(self) -> list[str]:
        """Recipients of this slot and channel claimed but never confirmed, in audience order."""
        rows = self.connection.execute(
            f"SELECT recipient FROM deliveries WHERE {KEY} AND status='{PENDING}' ORDER BY position", self.key
        )
        return [row[0] for row in rows]

    def runs(self) -> dict[str, int]:
        """Confirmed deliveries per run id in this slot and channel."""
        rows = self.connection.execute(
            f"SELECT run_id, COUNT(*) FROM deliveries WHERE {KEY} AND status='{SENT}' GROUP BY run_id", self.key
        )
        return {row[0]: int(row[1]) for row in rows}
