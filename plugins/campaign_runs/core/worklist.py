"""Work lists: the runs assigned to each person, and handing a run over to someone else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import auth, metrics
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import records
from campaign_runs.core.actions import require_user
from campaign_runs.core.dto import WorklistItem
from campaign_runs.core.schedule import require_run
from campaign_runs.domain import Action, ConflictError, NotFoundError, NotPermittedError, RunStatus, validate_note
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@provide_session
def worklist(
    username: str | None = None, *, include_resolved: bool = False, session: Session = NEW_SESSION
) -> list[WorklistItem]:
    """Work-list entries of ``username`` (everyone's when None), newest first."""
    return records.worklist_items(username, include_resolved, session)


@provide_session
def reassign(
    dag_id: str, run_id: str, *, to_user: str, actor: str, note: str | None = None, session: Session = NEW_SESSION
) -> WorklistItem:
    """Give a run's open work-list entry to another user: work-list administrators only, on every surface."""
    cleaned = validate_note(note, required=False, max_length=get_settings().note_max_length)
    require_user(actor, session=session)
    if not auth.is_worklist_admin_name(actor, session):
        raise NotPermittedError(f"Only work-list administrators may reassign work-list entries; {actor!r} is not one.")
    require_user(to_user, session=session)
    require_run(dag_id, run_id, session)
    entry = records.open_worklist_entry(dag_id, run_id, session)
    if entry is None:
        raise NotFoundError(f"Run {run_id!r} of campaign {dag_id!r} is on nobody's work list.")
    try:
        records.reassign_entry(session, entry, to_user)
    except ConflictError:
        session.rollback()
        raise
    record = records.record_of(dag_id, run_id, session)
    status = RunStatus(record.status) if record is not None and record.status else RunStatus.STOPPED
    records.record_action(
        session,
        dag_id=dag_id,
        run_id=run_id,
        action=Action.REASSIGN,
        actor=actor,
        note=cleaned or f"Reassigned from {entry.assignee} to {to_user}",
        before=status,
        after=status,
    )
    metrics.incr("action.reassign")
    return WorklistItem(entry.id, dag_id, run_id, to_user, entry.reason, entry.note, entry.created_at, None, None)
