"""Reading a slot's audience snapshot back in tests, whichever layout the store's database uses."""

from __future__ import annotations

from typing import Any

from campaign_runs.factory.snapshot import ROW_COLUMNS, SnapshotStore


def snapshot_rows(store: SnapshotStore, campaign: str, slot: str, columns: str = ROW_COLUMNS) -> list[tuple[Any, ...]]:
    """Every row of the slot's complete snapshot, in position order."""
    scope = store.scope(campaign, slot)
    return store.execute(f"SELECT {columns} FROM {scope.table} WHERE {scope.where} ORDER BY position", scope.params)
