"""Email outbox: rows written in the action's transaction, delivered after commit, retried with backoff.

Delivery claims a row with a compare-and-set UPDATE (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
so several API servers and schedulers never send the same row twice while it is being sent. A claim
lasts ``email_claim_seconds`` and is renewed every third of that while its send goes on, however long
the SMTP server takes (``[smtp] smtp_timeout`` is per socket operation, and a send has many); it is
re-checked before each send of a batch. Every message carries a stable ``Message-ID`` so a mail server
can drop the one duplicate that a process crash between "sent" and "recorded" could cause. After
``email_max_attempts`` failed attempts, or at once when the server refuses the recipient or the data
for good (5xx), a row is ``failed``; an administrator can resend it (``core.emails``).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, insert, or_, select, update

from campaign_runs import urls
from campaign_runs.adapters import auth, email, metrics
from campaign_runs.adapters.session import create_session, dialect_name
from campaign_runs.core import channel_delivery
from campaign_runs.core.audience_info import email_facts
from campaign_runs.domain import utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import email_outbox, run_action

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
UNDELIVERABLE = "undeliverable"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED, UNDELIVERABLE)

SUBJECTS = {
    "stopped": "Run {run_id} of {campaign} stopped",
    "restarted": "Run {run_id} of {campaign} restarted as {new_run_id}",
    "skipped": "Run {run_id} of {campaign} skipped",
    "deleted": "Run {run_id} of {campaign} was deleted in Airflow while stopping",
    "campaign_action": "{summary}",  # a whole phrase naming the campaign: "Stopping 2 runs of summer_sale"
}

TEMPLATES_DIR = Path(__file__).parent / "templates" / "email"
# Emails about one run: they say its audience (label, demo or not, recipients) once build_audience has read it.
RUN_KINDS = ("stopped", "restarted", "skipped", "deleted")
# Every email says when a channel is a dry run: a run's as it froze them, a campaign action's as the campaign has them.
DELIVERY_KINDS = (*RUN_KINDS, "campaign_action")

# <kind>.html is escaped; <kind>.txt, the plain-text alternative, is not (it is never rendered as HTML).
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class RenderedEmail:
    """Subject, HTML body and plain-text body of one email."""

    subject: str
    body_html: str
    body_text: str


def render(kind: str, context: dict[str, Any]) -> RenderedEmail:
    """Render the email of ``kind`` ("stopped", "restarted", "skipped"): both parts."""
    prefix = get_settings().email_subject_prefix
    subject = SUBJECTS[kind].format(**context)
    body = _templates.get_template(f"{kind}.html").render(**context)
    return RenderedEmail(subject=f"{prefix} {subject}".strip(), body_html=body, body_text=render_text(kind, context))


def render_text(kind: str, context: dict[str, Any]) -> str:
    """The plain-text alternative of the email of ``kind``."""
    return _templates.get_template(f"{kind}.txt").render(**context)


def action_context(dag_id: str, run_id: str, note: str, new_run_id: str | None = None) -> dict[str, Any]:
    """Template variables of an action's email: the note and links to the Campaign and Campaign run tabs.

    The links open Airflow's UI with the plugin's page inside it: the DAG's Campaign tab and the run's
    Campaign run tab (the new run's, for a restart).
    """
    base = get_settings().base_url
    context: dict[str, Any] = {
        "note": note,
        "campaign_url": urls.absolute(base, urls.campaign_tab_path(dag_id)),
        "run_url": urls.absolute(base, urls.run_tab_path(dag_id, run_id)),
        "new_run_id": new_run_id or "",
    }
    if new_run_id:
        context["new_run_url"] = urls.absolute(base, urls.run_tab_path(dag_id, new_run_id))
    return context


def text_body(row: Any, session: Session) -> str | None:
    """The plain-text part of an outbox row: as written with the HTML, or (older rows) rendered at send time.

    Rows written before ``body_text`` existed are rendered from the same facts (campaign, run, user, and
    the action's note and new run). None for a kind without a text template (such rows go out as HTML only).
    """
    if getattr(row, "body_text", None) is not None:
        return str(row.body_text)
    if not (TEMPLATES_DIR / f"{row.kind}.txt").is_file():
        return None
    note, new_run_id = "", None
    if row.action_id is not None:
        found = session.execute(
            select(run_action.c.note, run_action.c.new_run_id).where(run_action.c.id == row.action_id)
        ).one_or_none()
        if found is not None:
            note, new_run_id = found.note or "", found.new_run_id
    context = action_context(row.dag_id, row.run_id, note, new_run_id)
    return render_text(row.kind, {"username": row.username, "campaign": row.dag_id, "run_id": row.run_id, **context})


def enqueue(
    session: Session,
    *,
    kind: str,
    dag_id: str,
    run_id: str,
    username: str,
    action_id: int | None,
    context: dict[str, Any],
) -> int:
    """Write one email to the outbox in the caller's transaction; returns its id."""
    found = auth.resolve_email(username, session)
    address, reason = found.address, found.reason
    if kind in RUN_KINDS and "audience" not in context:
        context = {**context, "audience": email_facts(dag_id, run_id, session)}
    if kind in DELIVERY_KINDS and "delivery" not in context:
        deliveries = channel_delivery.campaign_deliveries(dag_id, run_id if kind in RUN_KINDS else None, session)
        context = {**context, "delivery": channel_delivery.email_facts(deliveries.values())}
    rendered = render(kind, {"username": username, "campaign": dag_id, "run_id": run_id, **context})
    now = utcnow()
    outbox_id = session.execute(
        insert(email_outbox)
        .returning(email_outbox.c.id)
        .values(
            action_id=action_id,
            dag_id=dag_id,
            run_id=run_id,
            kind=kind,
            username=username,
            recipient=address,
            subject=rendered.subject[:512],
            body_html=rendered.body_html,
            body_text=rendered.body_text,
            message_id=f"<campaign-runs.{secrets.token_hex(12)}@{socket.gethostname() or 'localhost'}>",
            status=PENDING if address else UNDELIVERABLE,
            attempts=0,
            next_attempt_at=now,
            last_error=reason,
            created_at=now,
        )
    ).scalar_one()
    return int(outbox_id)


def backoff_seconds(attempts: int) -> int:
    """Delay before the next attempt after ``attempts`` failed ones: exponential, capped."""
    settings = get_settings()
    return int(min(settings.email_retry_max_seconds, settings.email_retry_base_seconds * 2 ** max(0, attempts - 1)))


def _claim(session: Session, outbox_ids: list[int] | None, limit: int) -> list[tuple[int, str]]:
    """Claim due rows for this process; returns ``(id, claim_token)`` pairs, committed."""
    now = utcnow()
    due = and_(
        email_outbox.c.status == PENDING,
        email_outbox.c.next_attempt_at <= now,
        or_(email_outbox.c.claimed_until.is_(None), email_outbox.c.claimed_until < now),
    )
    query = select(email_outbox.c.id).where(due).order_by(email_outbox.c.id).limit(limit)
    if outbox_ids is not None:
        query = query.where(email_outbox.c.id.in_(outbox_ids))
    if dialect_name(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: list[tuple[int, str]] = []
    until = now + timedelta(seconds=get_settings().email_claim_seconds)
    for (outbox_id,) in session.execute(query).all():
        token = secrets.token_hex(16)
        result = session.execute(
            update(email_outbox)
            .where(email_outbox.c.id == outbox_id, due)
            .values(claim_token=token, claimed_until=until, attempts=email_outbox.c.attempts + 1)
        )
        if getattr(result, "rowcount", 0) == 1:
            claimed.append((outbox_id, token))
    session.commit()
    return claimed


def _still_mine(session: Session, outbox_id: int, token: str) -> bool:
    """Renew the claim before sending; False when it ran out meanwhile and another process took the row."""
    until = utcnow() + timedelta(seconds=get_settings().email_claim_seconds)
    result = session.execute(
        update(email_outbox)
        .where(email_outbox.c.id == outbox_id, email_outbox.c.claim_token == token)
        .values(claimed_until=until)
    )
    session.commit()
    return getattr(result, "rowcount", 0) == 1


@contextmanager
def _renewing(outbox_id: int, token: str) -> Iterator[None]:
    """Keep the claim on the row alive (every third of ``email_claim_seconds``) while the block runs."""
    seconds = get_settings().email_claim_seconds
    done = threading.Event()

    def renew() -> None:
        while not done.wait(seconds / 3):
            try:
                # No fork guard here: in the housekeeper the sending pass holds it, so no fork starts while this writes.
                with create_session() as renewal:
                    renewal.execute(
                        update(email_outbox)
                        .where(email_outbox.c.id == outbox_id, email_outbox.c.claim_token == token)
                        .values(claimed_until=utcnow() + timedelta(seconds=seconds))
                    )
            except Exception:
                log.warning("Could not renew the claim on email %s", outbox_id, exc_info=True)

    renewer = threading.Thread(target=renew, name=f"campaign-runs-claim-{outbox_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


def _record_failure(session: Session, row: Any, token: str, error: Exception) -> None:
    """Schedule the next attempt with backoff, or mark the row ``failed`` (last attempt, or refused for good)."""
    values: dict[str, Any] = {
        "claim_token": None,
        "claimed_until": None,
        "last_error": f"{type(error).__name__}: {error}"[:2000],
    }
    if row.attempts >= get_settings().email_max_attempts or email.is_permanent(error):
        values["status"] = FAILED
        metrics.incr("email.failed")
        log.error("Email %s to %s failed for good (attempt %s): %s", row.id, row.recipient, row.attempts, error)
    else:
        delay = backoff_seconds(row.attempts)
        values["next_attempt_at"] = utcnow() + timedelta(seconds=delay)
        metrics.incr("email.retried")
        log.warning(
            "Email %s to %s failed (attempt %s), retry in %ss: %s", row.id, row.recipient, row.attempts, delay, error
        )
    session.execute(
        update(email_outbox).where(email_outbox.c.id == row.id, email_outbox.c.claim_token == token).values(**values)
    )


def deliver(session: Session, outbox_ids: list[int] | None = None, limit: int = 50) -> int:
    """Send due emails (all, or only ``outbox_ids``); returns how many the SMTP server accepted."""
    sent = 0
    for outbox_id, token in _claim(session, outbox_ids, limit):
        if not _still_mine(session, outbox_id, token):
            continue
        row = session.execute(select(email_outbox).where(email_outbox.c.id == outbox_id)).one()
        try:
            with _renewing(outbox_id, token):
                email.send_email(row.recipient, row.subject, row.body_html, row.message_id, text_body(row, session))
        except Exception as error:
            _record_failure(session, row, token, error)
        else:
            session.execute(
                update(email_outbox)
                .where(email_outbox.c.id == outbox_id, email_outbox.c.claim_token == token)
                .values(status=SENT, sent_at=utcnow(), claim_token=None, claimed_until=None, last_error=None)
            )
            sent += 1
            metrics.incr("email.sent")
        session.commit()
    return sent
