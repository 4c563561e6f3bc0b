"""With a real scheduler: a campaign run that ends gets its summary, written by the scheduler's plugin."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_runs.core import monitor
from campaign_runs.tables import run_summary
from sqlalchemy import select

from tests.campaign_runs.core.test_restart_options import report_progress
from tests.campaign_runs.test_e2e_scheduler import stack, trigger  # noqa: F401  (fixture)
from tests.support.processes import AirflowStack, wait_until

pytestmark = pytest.mark.slow


def summary_rows(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(run_summary).where(run_summary.c.dag_id == dag_id, run_summary.c.run_id == run_id)
        )
        return {row.channel: dict(row._mapping) for row in rows}


def test_a_run_that_completes_is_summarised_by_the_scheduler(stack: AirflowStack) -> None:  # noqa: F811
    run_id = trigger("cr_campaign")
    # The test DAG's channel tasks are EmptyOperators (the scheduler marks them done without running them):
    # what a real send_email would have published, written before the run ends.
    report_progress("cr_campaign", run_id, "email", {"total": 12, "sent": 11, "failed": 1, "in_doubt": 0})
    try:
        wait_until(lambda: len(summary_rows("cr_campaign", run_id)) == 2, timeout=180, message="the run's summary")
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    rows = summary_rows("cr_campaign", run_id)
    assert {channel: (r["status"], r["sent"], r["failed"], r["total"]) for channel, r in rows.items()} == {
        "email": ("completed", 11, 1, 12),
        "sms": ("completed", 0, 0, 0),
    }
    assert rows["email"]["finalised"] is True and rows["email"]["ended_at"] is not None
    [run] = [r for r in monitor.campaign_metrics("cr_campaign", limit=10).runs if r.run_id == run_id]
    assert (run.status, run.sent, run.failed) == ("completed", 11, 1)
