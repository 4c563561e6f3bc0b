"""Run details: one builder for the run page, the REST API and the CLI."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from campaign_runs.adapters import dag_versions, tasks
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import emails, records
from campaign_runs.core.audience_info import run_audience
from campaign_runs.core.campaigns import require_campaign, summaries
from campaign_runs.core.channel_delivery import run_deliveries
from campaign_runs.core.dto import RunDetails, TaskView
from campaign_runs.core.progress import channel_progress, count
from campaign_runs.core.schedule import find_run, run_views

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.tasks import TaskRow


def in_doubt_count(dag_id: str, run_id: str, session: Session) -> int:
    """Recipients in doubt across the run's channels, as its channel tasks last reported them."""
    return sum(count(report.value.get("in_doubt")) for report in tasks.progress_reports(dag_id, run_id, session))


def _task_view(row: TaskRow) -> TaskView:
    return TaskView(
        task_id=row.task_id,
        map_index=row.map_index,
        state=row.state,
        try_number=row.try_number,
        max_tries=row.max_tries,
        start_date=row.start_date,
        end_date=row.end_date,
        duration_seconds=round(row.duration, 3) if row.duration is not None else None,
        operator=row.operator,
    )


@provide_session
def run_details(dag_id: str, run_id: str, *, with_failures: bool = False, session: Session = NEW_SESSION) -> RunDetails:
    """A run with progress per channel, its tasks, its history and (when asked) why its tasks failed."""
    dag = require_campaign(dag_id, session)
    dag_run = find_run(dag_id, run_id, session)
    run = replace(run_views(dag_id, [dag_run], session)[0], emails=emails.run_emails(dag_id, run_id, session))
    summary = summaries([dag], session)[0]
    task_rows = tasks.task_rows(dag_id, run_id, session)
    failures = tasks.failure_messages(dag_id, run_id, session) if with_failures else {}
    result = tasks.audience_result(dag_id, run_id, session)  # the audience, and the channels as the run froze them
    deliveries = run_deliveries(summary.channels, summary.dry_run_channels, result)
    reports = tasks.progress_reports(dag_id, run_id, session)
    return RunDetails(
        run=run,
        campaign=summary,
        channels=channel_progress(summary.channels, reports, task_rows, deliveries),
        tasks=[_task_view(row) for row in task_rows],
        history=records.history(dag_id, run_id, session, (dag_run.pk, dag_run.created_at)),
        failures=failures,
        dag_version=dag_versions.version_numbers(dag_id, [run_id], session).get(run_id),
        audience=run_audience(dag_id, run_id, task_rows, failures, result),
    )
