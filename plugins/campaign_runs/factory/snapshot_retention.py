"""Audience snapshots as ``airflow campaigns db-clean`` sees them: listed with their run, and deleted.

A snapshot belongs to the run that wrote it (``SnapshotStore.slots``). Listing opens no SQLite ledger that holds
no snapshot table (read-only check first): a demo campaign's ledger is left exactly as it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from campaign_runs.factory.snapshot import META_TABLE, SnapshotStore, open_snapshots

if TYPE_CHECKING:
    from pathlib import Path

LEDGER_FILE = "ledger.sqlite"


@dataclass(frozen=True)
class StoredSnapshot:
    """One slot's snapshot: its campaign, slot, the run that wrote it and when (ISO 8601, UTC)."""

    campaign: str
    slot: str
    run_id: str
    created_at: str


def _has_snapshots(path: Path) -> bool:
    """Whether SQLite file ``path`` holds the snapshot tables, read without changing it."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (META_TABLE,)).fetchone()
    except sqlite3.Error:
        return False
    return found is not None


def _listed(store: SnapshotStore, campaign: str | None) -> list[StoredSnapshot]:
    where, params = (" WHERE campaign=?", (campaign,)) if campaign is not None else ("", ())
    rows = store.execute(f"SELECT campaign, slot, run_id, created_at FROM {META_TABLE}{where}", params)
    return [StoredSnapshot(str(row[0]), str(row[1]), str(row[2]), str(row[3])) for row in rows]


def stored_snapshots(*, sink_dir: Path, conn_id: str = "") -> list[StoredSnapshot]:
    """Every complete snapshot: in Connection ``conn_id``'s database, else in each campaign's ledger file."""
    if conn_id:
        with open_snapshots("", sink_dir=sink_dir, conn_id=conn_id) as store:
            return _listed(store, None)
    found: list[StoredSnapshot] = []
    for path in sorted(sink_dir.glob(f"*/{LEDGER_FILE}")) if sink_dir.is_dir() else []:
        if _has_snapshots(path):
            with open_snapshots(path.parent.name, sink_dir=sink_dir) as store:
                found += _listed(store, path.parent.name)
    return found


def drop_snapshots(snapshots: Iterable[StoredSnapshot], *, sink_dir: Path, conn_id: str = "") -> int:
    """Delete each snapshot, its rows and its record (``SnapshotStore.drop``); the number deleted."""
    by_campaign: dict[str, list[str]] = {}
    for snapshot in snapshots:
        by_campaign.setdefault(snapshot.campaign, []).append(snapshot.slot)
    dropped = 0
    for campaign, slots in by_campaign.items():
        with open_snapshots(campaign, sink_dir=sink_dir, conn_id=conn_id) as store:
            for slot in slots:
                store.drop(campaign, slot)
                dropped += 1
    return dropped
