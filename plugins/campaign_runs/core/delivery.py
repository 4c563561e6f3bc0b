"""Sending freshly written emails right after the transaction that wrote them commits, off the caller's thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import event

from campaign_runs.adapters.session import create_session
from campaign_runs.core import notify

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING_KEY = "campaign_runs_outbox_pending"
_HOOKED_KEY = "campaign_runs_outbox_hooked"
_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


def deliver_soon(outbox_ids: Sequence[int]) -> threading.Thread | None:
    """Try to send committed emails now, on a thread of their own; the housekeeper retries what fails."""
    if not outbox_ids:
        return None
    ids = list(outbox_ids)

    def send() -> None:
        try:
            with create_session() as session:
                notify.deliver(session, ids)
        except Exception:
            log.exception("Immediate delivery of emails %s failed; they will be retried", ids)

    thread = threading.Thread(target=send, name="campaign-runs-email", daemon=True)
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()
    return thread


def _after_commit(session: Session) -> None:
    deliver_soon(session.info.pop(_PENDING_KEY, []))


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def deliver_after_commit(session: Session, outbox_ids: Sequence[int]) -> None:
    """Send ``outbox_ids`` as soon as ``session`` commits; forget them if it rolls back."""
    if not outbox_ids:
        return
    session.info.setdefault(_PENDING_KEY, []).extend(outbox_ids)
    if not session.info.get(_HOOKED_KEY):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_HOOKED_KEY] = True


def wait_for_deliveries(timeout: float) -> bool:
    """Wait until every delivery started in this process has ended; False when ``timeout`` ran out first."""
    deadline = time.monotonic() + timeout
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)
