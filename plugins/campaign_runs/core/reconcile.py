"""Runs someone acted on in Airflow itself after the plugin stopped or skipped them: cleared, marked or deleted.

The plugin's status of a run holds only while Airflow leaves the run as the plugin left it (``failed``, same
clear number, same DagRun). Reads show Airflow's live state as soon as that stops being true
(``domain.applied_record_status``); this module then writes down what happened: an entry in the run's
history, the work-list entry resolved with the reason, and a record reset so the run can be stopped again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import runs
from campaign_runs.core import notify, records
from campaign_runs.domain import (
    Action,
    ConflictError,
    RecordStatus,
    RunStatus,
    applied_record_status,
    derive_status,
    record_belongs,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.runs import DagRunInfo

AIRFLOW_ACTOR = "airflow"
RERUN_RESOLUTION = "rerun_in_airflow"
DELETED_RESOLUTION = "deleted"
_CLEARED = {"status": None, "stop_requested_by": None, "stop_requested_at": None, "stopped_at": None}


def identity(dag_run: DagRunInfo) -> dict[str, Any]:
    """Record values that tie a status to this DagRun as Airflow has it now (id, created_at, clear number)."""
    return {"dag_run_id": dag_run.pk, "dag_run_created_at": dag_run.created_at, "clear_number": dag_run.clear_number}


def belongs(record: Any, dag_run: DagRunInfo) -> bool:
    """Whether ``record`` exists and describes ``dag_run`` (not a deleted run with the same run_id)."""
    return record is not None and record_belongs(
        (record.dag_run_id, record.dag_run_created_at), (dag_run.pk, dag_run.created_at)
    )


def applied_status(record: Any, dag_run: DagRunInfo) -> str | None:
    """The record's status if it still holds for ``dag_run``, else None."""
    if not belongs(record, dag_run):
        return None
    return applied_record_status(record.status, record.clear_number, dag_run.clear_number, dag_run.state)


def is_superseded(record: Any, dag_run: DagRunInfo) -> bool:
    """Whether Airflow has overridden the record: a status that no longer holds, or a deleted namesake's record."""
    if record is None:
        return False
    if not belongs(record, dag_run):
        return True
    return record.status is not None and applied_status(record, dag_run) is None


def adopt(record: Any, dag_run: DagRunInfo, session: Session) -> tuple[Any, list[int]]:
    """Write down what Airflow did to a superseded record and reset it; returns (fresh record, outbox ids)."""
    outbox_ids: list[int] = []
    values: dict[str, Any] = {**_CLEARED, **identity(dag_run)}
    if not belongs(record, dag_run):
        outbox_ids = close_deleted(record, session)
        values |= {"restart_of_run_id": None, "replaced_by_run_id": None}
    else:
        live = derive_status(dag_run.state, None, 0)
        records.record_action(
            session,
            dag_id=record.dag_id,
            run_id=record.run_id,
            action=Action.AIRFLOW_RERUN,
            actor=AIRFLOW_ACTOR,
            note=f"Re-run in Airflow (clear #{dag_run.clear_number}); the run now follows Airflow's state.",
            before=RunStatus(record.status),
            after=live,
            dag_run=identity(dag_run),
        )
        records.resolve_worklist(session, record.dag_id, record.run_id, AIRFLOW_ACTOR, RERUN_RESOLUTION)
    records.transition(session, record.dag_id, record.run_id, record, values)
    return records.record_of(record.dag_id, record.run_id, session), outbox_ids


def close_deleted(record: Any, session: Session) -> list[int]:
    """Record that the run was deleted in Airflow; a pending stop still emails whoever asked for it."""
    records.record_action(
        session,
        dag_id=record.dag_id,
        run_id=record.run_id,
        action=Action.AIRFLOW_DELETE,
        actor=AIRFLOW_ACTOR,
        note="The run was deleted in Airflow.",
        before=RunStatus(record.status) if record.status else RunStatus.QUEUED,
        after=RunStatus(record.status) if record.status else RunStatus.QUEUED,
        dag_run={"dag_run_id": record.dag_run_id, "dag_run_created_at": record.dag_run_created_at},
    )
    records.resolve_worklist(session, record.dag_id, record.run_id, AIRFLOW_ACTOR, DELETED_RESOLUTION)
    if record.status != RecordStatus.STOPPING.value or not record.stop_requested_by:
        return []
    stop = records.last_stop_action(record.dag_id, record.run_id, session)
    context = notify.action_context(record.dag_id, record.run_id, stop.note if stop else "")
    outbox_id = notify.enqueue(
        session,
        kind="deleted",
        dag_id=record.dag_id,
        run_id=record.run_id,
        username=record.stop_requested_by,
        action_id=stop.id if stop else None,
        context=context,
    )
    return [outbox_id]


def reconcile_runs(session: Session) -> list[int]:
    """Adopt every record Airflow has overridden, and close those whose run is gone; commits once per record."""
    outbox_ids: list[int] = []
    for record, dag_run in runs.records_overridden_in_airflow(session):
        try:
            if dag_run is None:
                written = close_deleted(record, session)
                records.delete_record(session, record)
            else:
                written = adopt(record, dag_run, session)[1]
            session.commit()
        except ConflictError:  # another process got there first
            session.rollback()
            continue
        outbox_ids.extend(written)
    return outbox_ids
