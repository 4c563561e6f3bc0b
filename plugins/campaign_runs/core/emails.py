"""The outbox as people see it: a run's emails, failed emails per campaign, listing, and resending (admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from campaign_runs.adapters import auth
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import notify, records
from campaign_runs.core.delivery import deliver_after_commit
from campaign_runs.core.dto import EmailView
from campaign_runs.domain import Action, ConflictError, NotFoundError, NotPermittedError, RunStatus, utcnow
from campaign_runs.tables import email_outbox

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

RESENDABLE = (notify.FAILED, notify.UNDELIVERABLE)


def email_view(row: Any) -> EmailView:
    """One outbox row as people see it."""
    return EmailView(
        id=row.id,
        dag_id=row.dag_id,
        run_id=row.run_id,
        kind=row.kind,
        username=row.username,
        recipient=row.recipient,
        subject=row.subject,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
        next_attempt_at=row.next_attempt_at if row.status == notify.PENDING else None,
    )


def run_emails(dag_id: str, run_id: str, session: Session) -> list[EmailView]:
    """Every email about the run, oldest first, in one query."""
    query = select(email_outbox).where(email_outbox.c.dag_id == dag_id, email_outbox.c.run_id == run_id)
    return [email_view(row) for row in session.execute(query.order_by(email_outbox.c.id))]


def failed_counts(dag_ids: Sequence[str], session: Session) -> dict[str, int]:
    """Failed emails per campaign, in one query."""
    if not dag_ids:
        return {}
    rows = session.execute(
        select(email_outbox.c.dag_id, func.count())
        .where(email_outbox.c.dag_id.in_(list(dag_ids)), email_outbox.c.status == notify.FAILED)
        .group_by(email_outbox.c.dag_id)
    )
    return {dag_id: int(count) for dag_id, count in rows}


@provide_session
def list_emails(
    *, status: str | None = None, dag_id: str | None = None, limit: int = 100, session: Session = NEW_SESSION
) -> list[EmailView]:
    """Outbox emails, newest first (only those with ``status`` / of campaign ``dag_id`` when given)."""
    query = select(email_outbox).order_by(email_outbox.c.id.desc()).limit(max(1, limit))
    if status is not None:
        query = query.where(email_outbox.c.status == status)
    if dag_id is not None:
        query = query.where(email_outbox.c.dag_id == dag_id)
    return [email_view(row) for row in session.execute(query)]


def _require_admin(actor: str, session: Session) -> None:
    exists, _ = auth.user_email(actor, session)
    if not exists:
        raise NotFoundError(f"User {actor!r} does not exist.")
    if not auth.is_worklist_admin_name(actor, session):
        raise NotPermittedError(f"Only work-list administrators may resend emails, and {actor!r} is not one.")


def _require_resendable(outbox_id: int, session: Session) -> tuple[Any, str]:
    """The outbox row and its user's current address, or the domain error that refuses the resend."""
    row = session.execute(select(email_outbox).where(email_outbox.c.id == outbox_id)).first()
    if row is None:
        raise NotFoundError(f"Email {outbox_id} does not exist.")
    if row.status not in RESENDABLE:
        raise ConflictError(f"Email {outbox_id} is {row.status}; only failed or undeliverable emails can be resent.")
    _, address = auth.user_email(row.username, session)
    if not address:
        raise ConflictError(f"User {row.username!r} has no email address; add one, then resend email {outbox_id}.")
    return row, address


@provide_session
def resend_email(outbox_id: int, actor: str, *, session: Session = NEW_SESSION) -> EmailView:
    """Send a failed or undeliverable email again (work-list administrators only): pending, attempts reset.

    The address is read again from the user store; the resend is kept in the run's history and the email
    goes out after commit (the housekeeper retries it as usual).
    """
    _require_admin(actor, session)
    row, address = _require_resendable(outbox_id, session)
    result = session.execute(
        update(email_outbox)
        .where(email_outbox.c.id == outbox_id, email_outbox.c.status == row.status)
        .values(
            status=notify.PENDING,
            attempts=0,
            recipient=address,
            next_attempt_at=utcnow(),
            claim_token=None,
            claimed_until=None,
            last_error=None,
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        raise ConflictError(f"Email {outbox_id} was changed by someone else at the same time; reload and retry.")
    record = records.record_of(row.dag_id, row.run_id, session)
    status = RunStatus(record.status) if record is not None and record.status else RunStatus.STOPPED
    records.record_action(
        session,
        dag_id=row.dag_id,
        run_id=row.run_id,
        action=Action.RESEND_EMAIL,
        actor=actor,
        note=f"Resent email {outbox_id} ({row.kind}) to {address}; it was {row.status}: {row.last_error or ''}".strip(),
        before=status,
        after=status,
    )
    deliver_after_commit(session, [outbox_id])
    resent = session.execute(select(email_outbox).where(email_outbox.c.id == outbox_id)).one()
    return email_view(resent)
