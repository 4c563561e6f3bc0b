"""The audience snapshots ``airflow campaigns db-clean`` removes: those of runs Airflow no longer has.

A snapshot is kept while the run that wrote it exists, or any run serving the same slot (a restart reads the
snapshot of the run it restarts); one whose run is gone (deleted, or removed by ``airflow db clean``) and that
was written before the cutoff is deleted with its rows.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from campaign_runs.adapters import connections, run_slots

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from campaign_runs.factory.snapshot_retention import StoredSnapshot

STORED_TIME = "%Y-%m-%dT%H:%M:%SZ"  # how a snapshot's created_at is written


def orphaned_snapshots(older_than: datetime, session: Session) -> list[StoredSnapshot]:
    """Snapshots written before ``older_than`` whose run, and every run of their slot, Airflow no longer has."""
    from campaign_runs.factory.factory import ledger_conn_id, sink_directory
    from campaign_runs.factory.snapshot_retention import stored_snapshots

    connections.use_server_secrets()
    cutoff = (older_than.astimezone(UTC) if older_than.tzinfo else older_than).strftime(STORED_TIME)
    remaining: dict[str, tuple[set[str], set[str]]] = {}
    doomed = []
    for snapshot in stored_snapshots(sink_dir=sink_directory(), conn_id=ledger_conn_id()):
        if snapshot.campaign not in remaining:
            remaining[snapshot.campaign] = run_slots.remaining_runs(snapshot.campaign, session)
        run_ids, slots = remaining[snapshot.campaign]
        if snapshot.created_at < cutoff and snapshot.run_id not in run_ids and snapshot.slot not in slots:
            doomed.append(snapshot)
    return doomed


def clean_snapshots(older_than: datetime, *, dry_run: bool, session: Session) -> int:
    """Delete (or, in a dry run, count) the orphaned snapshots written before ``older_than``."""
    from campaign_runs.factory.factory import ledger_conn_id, sink_directory
    from campaign_runs.factory.snapshot_retention import drop_snapshots

    doomed = orphaned_snapshots(older_than, session)
    if dry_run or not doomed:
        return len(doomed)
    return drop_snapshots(doomed, sink_dir=sink_directory(), conn_id=ledger_conn_id())
