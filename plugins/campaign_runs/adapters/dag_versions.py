"""Which version of its DAG (Airflow's ``DagVersion.version_number``) each run was created with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

BATCH = 500  # run ids per statement: bounded IN lists on every database


def version_numbers(dag_id: str, run_ids: list[str], session: Session) -> dict[str, int | None]:
    """``run_id -> version_number`` of the DAG version each run was created from (None when Airflow kept none)."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagrun import DagRun

    found: dict[str, int | None] = {}
    wanted = sorted(set(run_ids))
    for start in range(0, len(wanted), BATCH):
        rows = session.execute(
            select(DagRun.run_id, DagVersion.version_number)
            .outerjoin(DagVersion, DagVersion.id == DagRun.created_dag_version_id)
            .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(wanted[start : start + BATCH]))
        )
        found.update({row.run_id: row.version_number for row in rows})
    return found
