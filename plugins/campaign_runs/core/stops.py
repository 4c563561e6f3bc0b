"""Finishing stops: a ``stopping`` run moves to ``stopped`` once no task of it runs (work list + email), or is
force-failed past the grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import metrics, runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import notify, reconcile, records, summaries
from campaign_runs.domain import ConflictError, RecordStatus, utcnow
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def finish_stop(record: Any, session: Session) -> list[int]:
    """Move a ``stopping`` run to ``stopped``: work-list entry and email, in the caller's transaction."""
    records.transition(
        session, record.dag_id, record.run_id, record, {"status": RecordStatus.STOPPED.value, "stopped_at": utcnow()}
    )
    stop_action = records.last_stop_action(record.dag_id, record.run_id, session)
    actor = record.stop_requested_by or (stop_action.actor if stop_action else "")
    note = stop_action.note if stop_action else ""
    action_id = stop_action.id if stop_action else None
    records.add_worklist_entry(
        session, dag_id=record.dag_id, run_id=record.run_id, assignee=actor, note=note, action_id=action_id
    )
    summaries.emit(summaries.finalise_stopped(record.dag_id, record.run_id, session))
    if record.stop_requested_at is not None:
        metrics.timing("stop_to_stopped", utcnow() - record.stop_requested_at)
    if getattr(record, "stop_email", True) is False:  # one of a Stop all: that action sent one email for all
        return []
    outbox_id = notify.enqueue(
        session,
        kind="stopped",
        dag_id=record.dag_id,
        run_id=record.run_id,
        username=actor,
        action_id=action_id,
        context=notify.action_context(record.dag_id, record.run_id, note),
    )
    return [outbox_id]


def finish_pending_stop(record: Any, session: Session) -> list[int] | None:
    """Finish the stop of a run that reads ``stopped`` before the housekeeper's pass.

    Returns the outbox ids written, ``[]`` when the housekeeper finished it meanwhile, None when there was
    no stop to finish.
    """
    if record is None or record.status != RecordStatus.STOPPING.value:
        return None
    try:
        return finish_stop(record, session)
    except ConflictError:
        return []


@provide_session
def finish_stopping_runs(*, session: Session = NEW_SESSION) -> list[int]:
    """Move ``stopping`` runs with no running task to ``stopped``; force-fail those past the grace period.

    Commits once per run. Returns the outbox ids of the emails written. Safe to run in several processes.
    """
    grace = timedelta(seconds=get_settings().stop_grace_seconds)
    outbox_ids: list[int] = []
    for record in records.stopping_records(session):
        dag_run = runs.get_run(record.dag_id, record.run_id, session)
        if dag_run is None or reconcile.is_superseded(record, dag_run):
            continue  # deleted or re-run in Airflow: ``reconcile_runs`` writes that down
        running = runs.running_task_counts(record.dag_id, [record.run_id], session).get(record.run_id, 0)
        if running:
            if utcnow() - (record.stop_requested_at or utcnow()) >= grace:
                runs.force_fail_running(record.dag_id, record.run_id, session)
                session.commit()
            continue
        try:
            outbox_ids.extend(finish_stop(record, session))
            session.commit()
        except ConflictError:
            session.rollback()
    return outbox_ids
