"""The campaign's history (``campaign_event``): saved definitions as numbered versions, and campaign actions."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select

from campaign_runs.domain import utcnow
from campaign_runs.tables import campaign_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def sha_of(text: str) -> str:
    """The content hash that names a version in optimistic edits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_event(
    session: Session,
    *,
    dag_id: str,
    kind: str,
    actor: str,
    note: str,
    text: str | None = None,
    diff: str | None = None,
    details: str | None = None,
) -> tuple[int, int | None]:
    """One history entry (a version when ``text`` is given); returns its id and version number."""
    version = None
    if text is not None:
        last = session.scalar(select(func.max(campaign_event.c.version)).where(campaign_event.c.dag_id == dag_id))
        version = int(last or 0) + 1
    event_id = session.execute(
        insert(campaign_event)
        .returning(campaign_event.c.id)
        .values(
            dag_id=dag_id,
            kind=kind,
            actor=actor,
            note=note,
            version=version,
            content_sha=sha_of(text) if text is not None else None,
            definition=text,
            diff=diff,
            details=details,
            created_at=utcnow(),
        )
    ).scalar_one()
    return int(event_id), version
