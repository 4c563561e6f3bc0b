"""Helpers shared by the core tests: plugin row counts, DagRuns and task states read straight from the DB."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from sqlalchemy import func, select

if TYPE_CHECKING:
    from sqlalchemy import Table


def count(table: Table) -> int:
    """How many rows ``table`` holds."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def dag_run(dag_id: str, run_id: str) -> SimpleNamespace:
    """The run's state, note, conf, logical date and run id, read in a session of its own."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return SimpleNamespace(
            state=dr.state, note=dr.note, conf=dr.conf, logical_date=dr.logical_date, run_id=dr.run_id
        )


def ti_states(dag_id: str, run_id: str) -> dict[str, str | None]:
    """``task_id -> state`` of the run's task instances."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        )
        return {task_id: (str(state) if state else None) for task_id, state in rows}
