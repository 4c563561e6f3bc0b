"""The runs Airflow still has of a campaign, and the audience slots they serve (what db-clean keeps snapshots of)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def remaining_runs(dag_id: str, session: Session) -> tuple[set[str], set[str]]:
    """The run ids of ``dag_id`` in Airflow and the slot keys of their audiences (a restart: its original's)."""
    from airflow.models.dagrun import DagRun

    from campaign_runs.factory.audience import slot_for_run

    rows = session.execute(
        select(
            DagRun.run_id, DagRun.conf, DagRun.logical_date, DagRun.data_interval_start, DagRun.data_interval_end
        ).where(DagRun.dag_id == dag_id)
    )
    run_ids: set[str] = set()
    slots: set[str] = set()
    for row in rows:
        run_ids.add(str(row.run_id))
        try:
            slot, _ = slot_for_run(
                run_id=str(row.run_id),
                conf=row.conf if isinstance(row.conf, dict) else None,
                logical_date=row.logical_date,
                data_interval_start=row.data_interval_start,
                data_interval_end=row.data_interval_end,
            )
        except ValueError:  # a conf with a broken campaign_slot: its run never read a snapshot
            continue
        slots.add(slot.key)
    return run_ids, slots
