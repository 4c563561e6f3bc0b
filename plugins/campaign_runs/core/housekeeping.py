"""Housekeeping: one pass that follows Airflow, stops what guards ask, finishes stops, sends due email."""

from __future__ import annotations

from campaign_runs.adapters import metrics
from campaign_runs.adapters.session import create_session
from campaign_runs.core import guard, monitor, notify, reconcile, summaries
from campaign_runs.core.stops import finish_stopping_runs


def housekeeping_pass() -> tuple[list[int], int]:
    """One pass: follow Airflow, finish stops, send due emails, summarise ended runs. Returns (outbox ids, sent)."""
    with create_session() as session:
        outbox_ids = reconcile.reconcile_runs(session)
    guard.stop_tripped_runs()  # the Stops tripped guards ask for, finished below when their tasks ended
    with create_session() as session:
        outbox_ids += finish_stopping_runs(session=session)
    with create_session() as session:
        sent = notify.deliver(session)
        metrics.gauge("outbox.backlog", monitor.outbox_backlog(session)[0])
    summaries.finalise_ended()  # after the emails: a summary that cannot be written never holds them up
    return outbox_ids, sent
