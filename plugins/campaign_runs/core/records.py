"""The plugin's own rows: run records (compare-and-set), the action history and work-list entries."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from campaign_runs.core.dto import ActionResult, HistoryEntry, WorklistItem
from campaign_runs.domain import Action, ConflictError, IdempotencyKeyReusedError, RunStatus, utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import run_action, run_record, worklist_entry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session


def records(dag_id: str, run_ids: Sequence[str], session: Session) -> dict[str, Any]:
    """The record of each of ``run_ids`` that has one, in one query."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(run_record).where(run_record.c.dag_id == dag_id, run_record.c.run_id.in_(list(run_ids)))
    )
    return {row.run_id: row for row in rows}


def record_of(dag_id: str, run_id: str, session: Session) -> Any:
    """The record of one run, or None."""
    return records(dag_id, [run_id], session).get(run_id)


def stopping_records(session: Session) -> list[Any]:
    """Every record that reads ``stopping``."""
    return list(session.execute(select(run_record).where(run_record.c.status == RunStatus.STOPPING.value)).all())


def transition(session: Session, dag_id: str, run_id: str, record: Any, values: dict[str, Any]) -> None:
    """Compare-and-set the run's record: exactly one of concurrent writers succeeds."""
    now = utcnow()
    if record is None:
        session.execute(insert(run_record).values(dag_id=dag_id, run_id=run_id, version=1, updated_at=now, **values))
        session.flush()
        return
    result = session.execute(
        update(run_record)
        .where(
            run_record.c.dag_id == dag_id,
            run_record.c.run_id == run_id,
            run_record.c.version == record.version,
        )
        .values(version=record.version + 1, updated_at=now, **values)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError(f"Run {run_id!r} was changed by someone else at the same time; reload and retry.")


def link_restart(session: Session, dag_id: str, new_run_id: str, restart_of: str, dag_run: dict[str, Any]) -> None:
    """Create the record of a restarted run (``dag_run``: its identity values), linked to the run it replaces."""
    session.execute(
        insert(run_record).values(
            dag_id=dag_id,
            run_id=new_run_id,
            version=1,
            restart_of_run_id=restart_of,
            updated_at=utcnow(),
            **dag_run,
        )
    )


def delete_record(session: Session, record: Any) -> None:
    """Delete the record of a run that no longer exists (compare-and-set on its version)."""
    result = session.execute(
        delete(run_record).where(
            run_record.c.dag_id == record.dag_id,
            run_record.c.run_id == record.run_id,
            run_record.c.version == record.version,
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError(f"Run {record.run_id!r} was changed by someone else at the same time.")


def record_action(
    session: Session,
    *,
    dag_id: str,
    run_id: str,
    action: Action,
    actor: str,
    note: str,
    before: RunStatus,
    after: RunStatus,
    new_run_id: str | None = None,
    idempotency_key: str | None = None,
    dag_run: dict[str, Any] | None = None,
    request_fingerprint: str | None = None,
) -> int:
    """Append one action to the run's history (of the DagRun ``dag_run``: its id and created_at); returns its id."""
    action_id = session.execute(
        insert(run_action)
        .returning(run_action.c.id)
        .values(
            dag_id=dag_id,
            run_id=run_id,
            action=action.value,
            actor=actor,
            note=note,
            status_before=before.value,
            status_after=after.value,
            new_run_id=new_run_id,
            dag_run_id=(dag_run or {}).get("dag_run_id"),
            dag_run_created_at=(dag_run or {}).get("dag_run_created_at"),
            idempotency_key=idempotency_key or None,
            request_fingerprint=request_fingerprint if idempotency_key else None,
            created_at=utcnow(),
        )
    ).scalar_one()
    return int(action_id)


def request_fingerprint(action: Action | str, dag_id: str, run_id: str, **options: Any) -> str:
    """SHA-256 (hex) of a canonical JSON of the request: action, run and every option (note as it is recorded)."""
    if "note" in options:
        options["note"] = (options["note"] or "").replace("\r\n", "\n").strip()
    request = {"action": str(action), "dag_id": dag_id, "run_id": run_id, "options": options}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(actor: str, idempotency_key: str | None, fingerprint: str | None, session: Session) -> ActionResult | None:
    """The result of the action ``actor`` already took with ``idempotency_key`` for this same request, if any.

    The same key with another request (``fingerprint``) raises ``IdempotencyKeyReusedError``. A key older than
    ``idempotency_key_ttl_hours`` is released (set NULL on its action, in the caller's transaction): the
    request then starts a new action.
    """
    if not idempotency_key:
        return None
    row = session.execute(
        select(run_action).where(run_action.c.actor == actor, run_action.c.idempotency_key == idempotency_key)
    ).first()
    if row is None:
        return None
    if row.created_at <= utcnow() - timedelta(hours=get_settings().idempotency_key_ttl_hours):
        session.execute(update(run_action).where(run_action.c.id == row.id).values(idempotency_key=None))
        return None
    # A key recorded before fingerprints existed (NULL) still replays.
    if row.request_fingerprint is not None and row.request_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            f"Idempotency-Key {idempotency_key!r} was already used for another request ({row.action} of run "
            f"{row.run_id!r} of campaign {row.dag_id!r}, with its own note and options); send a new key for a "
            "new request."
        )
    return ActionResult(
        action_id=row.id,
        action=row.action,
        dag_id=row.dag_id,
        run_id=row.run_id,
        actor=row.actor,
        status_before=row.status_before,
        status_after=row.status_after,
        new_run_id=row.new_run_id,
        replayed=True,
    )


def last_stop_action(dag_id: str, run_id: str, session: Session) -> Any:
    """The newest Stop recorded for the run, or None."""
    return session.execute(
        select(run_action)
        .where(run_action.c.dag_id == dag_id, run_action.c.run_id == run_id, run_action.c.action == Action.STOP.value)
        .order_by(run_action.c.id.desc())
        .limit(1)
    ).first()


def history(dag_id: str, run_id: str, session: Session, dag_run: tuple[int, Any] | None = None) -> list[HistoryEntry]:
    """Every action taken on the run (on DagRun ``(id, created_at)`` when given, not a deleted namesake)."""
    query = select(run_action).where(run_action.c.dag_id == dag_id, run_action.c.run_id == run_id)
    if dag_run is not None:
        pk, created_at = dag_run
        same = and_(
            run_action.c.dag_run_id == pk,
            or_(run_action.c.dag_run_created_at.is_(None), run_action.c.dag_run_created_at == created_at),
        )
        query = query.where(or_(run_action.c.dag_run_id.is_(None), same))
    rows = session.execute(query.order_by(run_action.c.id))
    return [
        HistoryEntry(r.id, r.action, r.actor, r.note, r.status_before, r.status_after, r.new_run_id, r.created_at)
        for r in rows
    ]


def _item(row: Any) -> WorklistItem:
    return WorklistItem(
        row.id,
        row.dag_id,
        row.run_id,
        row.assignee,
        row.reason,
        row.note,
        row.created_at,
        row.resolved_at,
        row.resolution,
    )


def add_worklist_entry(
    session: Session, *, dag_id: str, run_id: str, assignee: str, note: str, action_id: int | None
) -> None:
    """Put a stopped run on ``assignee``'s work list."""
    session.execute(
        insert(worklist_entry).values(
            dag_id=dag_id,
            run_id=run_id,
            assignee=assignee,
            reason="stopped",
            note=note,
            action_id=action_id,
            created_at=utcnow(),
        )
    )


def open_worklist_entry(dag_id: str, run_id: str, session: Session) -> WorklistItem | None:
    """The run's open work-list entry, or None."""
    row = session.execute(
        select(worklist_entry).where(
            worklist_entry.c.dag_id == dag_id,
            worklist_entry.c.run_id == run_id,
            worklist_entry.c.resolved_at.is_(None),
        )
    ).first()
    return _item(row) if row is not None else None


def worklist_items(username: str | None, include_resolved: bool, session: Session) -> list[WorklistItem]:
    """Work-list entries of ``username`` (everyone's when None), newest first."""
    query = select(worklist_entry).order_by(worklist_entry.c.created_at.desc(), worklist_entry.c.id.desc())
    if username is not None:
        query = query.where(worklist_entry.c.assignee == username)
    if not include_resolved:
        query = query.where(worklist_entry.c.resolved_at.is_(None))
    return [_item(r) for r in session.execute(query)]


def open_worklist_counts(dag_ids: Sequence[str], session: Session) -> dict[str, int]:
    """Open work-list entries per campaign, in one query."""
    if not dag_ids:
        return {}
    rows = session.execute(
        select(worklist_entry.c.dag_id, func.count())
        .where(worklist_entry.c.dag_id.in_(list(dag_ids)), worklist_entry.c.resolved_at.is_(None))
        .group_by(worklist_entry.c.dag_id)
    )
    return {dag_id: int(count) for dag_id, count in rows}


def reassign_entry(session: Session, entry: WorklistItem, to_user: str) -> None:
    """Compare-and-set the entry's assignee."""
    result = session.execute(
        update(worklist_entry)
        .where(
            worklist_entry.c.id == entry.id,
            worklist_entry.c.assignee == entry.assignee,
            worklist_entry.c.resolved_at.is_(None),
        )
        .values(assignee=to_user)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError("The work-list entry changed at the same time; reload and retry.")


def resolve_worklist(session: Session, dag_id: str, run_id: str, actor: str, resolution: str) -> None:
    """Close the run's open work-list entry."""
    session.execute(
        update(worklist_entry)
        .where(
            worklist_entry.c.dag_id == dag_id,
            worklist_entry.c.run_id == run_id,
            worklist_entry.c.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow(), resolved_by=actor, resolution=resolution)
    )
