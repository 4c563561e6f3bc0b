"""Retention of the plugin's own rows: what ``airflow campaigns db-clean`` removes, and what it keeps.

Run records are not aged: a run's status lives as long as the run, and the housekeeper removes the record
of a run deleted in Airflow (or by ``airflow db clean``) as soon as it notices (``reconcile``). The audience
snapshots of such runs go with the clean (``snapshot_cleaning``): those of runs Airflow still has stay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, func, not_, select

from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core.snapshot_cleaning import clean_snapshots
from campaign_runs.tables import email_outbox, run_action, worklist_entry

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.orm import Session

FINISHED_EMAILS = ("sent", "failed", "undeliverable")
DELETE_CHUNK = 500


@dataclass(frozen=True)
class CleanResult:
    """Rows removed (or, in a dry run, that would be) per table."""

    emails: int
    worklist_entries: int
    actions: int
    dry_run: bool
    snapshots: int = 0  # audience snapshots of runs Airflow no longer has


def _old_emails(cutoff: datetime) -> ColumnElement[bool]:
    return and_(email_outbox.c.created_at < cutoff, email_outbox.c.status.in_(FINISHED_EMAILS))


def _old_entries(cutoff: datetime) -> ColumnElement[bool]:
    return and_(worklist_entry.c.resolved_at.is_not(None), worklist_entry.c.resolved_at < cutoff)


def _old_actions(cutoff: datetime) -> ColumnElement[bool]:
    """Actions before ``cutoff`` that no email or work-list entry kept by the clean still points to."""
    kept_emails = select(email_outbox.c.action_id).where(
        email_outbox.c.action_id.is_not(None), not_(_old_emails(cutoff))
    )
    kept_entries = select(worklist_entry.c.action_id).where(
        worklist_entry.c.action_id.is_not(None), not_(_old_entries(cutoff))
    )
    return and_(
        run_action.c.created_at < cutoff, run_action.c.id.not_in(kept_emails), run_action.c.id.not_in(kept_entries)
    )


def _count(session: Session, table: Table, clause: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(clause)) or 0)


@provide_session
def clean(older_than: datetime, *, dry_run: bool = False, session: Session = NEW_SESSION) -> CleanResult:
    """Remove finished emails, resolved work-list entries, unreferenced actions and orphaned audience snapshots.

    One transaction for the plugin's rows. Pending emails, open work-list entries and the actions they point to
    are always kept, and so is the audience snapshot of every run Airflow still has.
    """
    result = CleanResult(
        emails=_count(session, email_outbox, _old_emails(older_than)),
        worklist_entries=_count(session, worklist_entry, _old_entries(older_than)),
        actions=_count(session, run_action, _old_actions(older_than)),
        dry_run=dry_run,
    )
    if dry_run:
        return replace(result, snapshots=clean_snapshots(older_than, dry_run=True, session=session))
    doomed = list(session.scalars(select(run_action.c.id).where(_old_actions(older_than))))
    session.execute(delete(email_outbox).where(_old_emails(older_than)))
    session.execute(delete(worklist_entry).where(_old_entries(older_than)))
    for start in range(0, len(doomed), DELETE_CHUNK):
        session.execute(delete(run_action).where(run_action.c.id.in_(doomed[start : start + DELETE_CHUNK])))
    return replace(result, snapshots=clean_snapshots(older_than, dry_run=False, session=session))
