"""The run schedule: upcoming slots from the timetable, past runs with their displayed status, one run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import dags, runs, tasks
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import records
from campaign_runs.core.campaigns import detail, require_campaign
from campaign_runs.core.dto import CampaignDisplay, HistoryEntry, MessageProgress, RunSchedule, RunView, UpcomingRun
from campaign_runs.core.progress import channel_progress
from campaign_runs.core.reconcile import applied_status, belongs
from campaign_runs.core.served_slot import originals_due, served_slot
from campaign_runs.domain import NotFoundError, RecordStatus, RunStatus, allowed_actions, derive_status
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from campaign_runs.adapters.dags import DagDefinition, DagInfo
    from campaign_runs.adapters.runs import DagRunInfo


def find_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRunInfo:
    """A run of a known campaign, or ``NotFoundError``; with ``lock`` its row is locked until commit."""
    dag_run = runs.get_run(dag_id, run_id, session, lock=lock)
    if dag_run is None:
        raise NotFoundError(f"Run {run_id!r} of campaign {dag_id!r} does not exist.")
    return dag_run


def require_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRunInfo:
    """The campaign's run, or ``NotFoundError`` / ``NotACampaignError``."""
    require_campaign(dag_id, session)
    return find_run(dag_id, run_id, session, lock=lock)


def current_status(dag_run: DagRunInfo, record: object, session: Session) -> RunStatus:
    """The run's displayed status right now (a ``stopping`` record counts its running tasks)."""
    running = runs.running_task_counts(dag_run.dag_id, [dag_run.run_id], session).get(dag_run.run_id, 0)
    return derive_status(dag_run.state, applied_status(record, dag_run), running)


def _slots(dag: DagInfo, definition: DagDefinition | None, count: int | None) -> list[UpcomingRun]:
    if definition is None or dag.is_paused:
        return []
    wanted = get_settings().upcoming_runs if count is None else count
    return [
        UpcomingRun(s.logical_date, s.data_interval_start, s.data_interval_end, s.run_after)
        for s in dags.upcoming_slots(definition, dag, wanted)
    ]


@provide_session
def upcoming_runs(dag_id: str, count: int | None = None, *, session: Session = NEW_SESSION) -> list[UpcomingRun]:
    """The next ``count`` slots from the campaign's timetable (none when paused or unscheduled)."""
    dag = require_campaign(dag_id, session)
    return _slots(dag, dags.get_definition(dag_id, session), count)


def run_views(dag_id: str, dag_runs: list[DagRunInfo], session: Session) -> list[RunView]:
    """Runs with their displayed status, task and message progress and note, in a constant number of queries."""
    run_ids = [dr.run_id for dr in dag_runs]
    found = records.records(dag_id, run_ids, session)
    found = {dr.run_id: found[dr.run_id] for dr in dag_runs if belongs(found.get(dr.run_id), dr)}
    applied = {dr.run_id: applied_status(found.get(dr.run_id), dr) for dr in dag_runs}
    stopping = [rid for rid, status in applied.items() if status == RecordStatus.STOPPING]
    running = runs.running_task_counts(dag_id, stopping, session)
    progress = runs.task_progress(dag_id, run_ids, session)
    notes = runs.notes_of([dr.pk for dr in dag_runs], session)
    reports = tasks.progress_reports_of(dag_id, run_ids, session)
    due = runs.run_after_of(dag_id, originals_due(dag_runs), session)  # none unless a restart needs one
    views = []
    for dr in dag_runs:
        record = found.get(dr.run_id)
        status = derive_status(dr.state, applied[dr.run_id], running.get(dr.run_id, 0))
        done, total = progress.get(dr.run_id, (0, 0))
        views.append(
            RunView(
                dag_id=dag_id,
                run_id=dr.run_id,
                status=status.value,
                dag_run_state=dr.state,
                run_type=dr.run_type,
                logical_date=dr.logical_date,
                data_interval_start=dr.data_interval_start,
                data_interval_end=dr.data_interval_end,
                run_after=dr.run_after,
                start_date=dr.start_date,
                end_date=dr.end_date,
                triggering_user=dr.triggering_user,
                note=notes.get(dr.pk),
                tasks_total=total,
                tasks_done=done,
                restart_of=record.restart_of_run_id if record is not None else None,
                replaced_by=record.replaced_by_run_id if record is not None else None,
                allowed_actions=[a.value for a in allowed_actions(status)],
                messages=MessageProgress.of(channel_progress([], reports.get(dr.run_id, []), [])),
                slot=served_slot(dr, due),
            )
        )
    return views


def _schedule(
    dag: DagInfo,
    definition: DagDefinition | None,
    *,
    page: int,
    page_size: int | None,
    upcoming: int | None,
    include_skipped: bool,
    statuses: Sequence[str] | None,
    session: Session,
) -> RunSchedule:
    wanted = [RunStatus(s) for s in statuses or []]
    past = [s for s in wanted if s is not RunStatus.SCHEDULED]
    want_upcoming = not wanted or RunStatus.SCHEDULED in wanted
    want_past = not wanted or bool(past)
    size = page_size or get_settings().page_size
    page = max(1, page)
    dag_runs: list[DagRunInfo] = []
    total = 0
    if want_past:
        dag_runs, total = runs.schedule_page(
            dag.dag_id,
            include_skipped=include_skipped,
            statuses=past,
            limit=size,
            offset=(page - 1) * size,
            session=session,
        )
    return RunSchedule(
        dag_id=dag.dag_id,
        upcoming=_slots(dag, definition, upcoming) if page == 1 and want_upcoming else [],
        runs=run_views(dag.dag_id, dag_runs, session),
        total=total,
        page=page,
        page_size=size,
    )


@provide_session
def run_schedule(
    dag_id: str,
    *,
    page: int = 1,
    page_size: int | None = None,
    upcoming: int | None = None,
    include_skipped: bool = False,
    statuses: Sequence[str] | None = None,
    session: Session = NEW_SESSION,
) -> RunSchedule:
    """Upcoming slots and a page of past runs, newest first; skipped runs only when asked.

    ``statuses`` filters by displayed status; ``scheduled`` selects the upcoming slots.
    """
    dag = require_campaign(dag_id, session)
    definition = dags.get_definition(dag_id, session) if page == 1 and upcoming != 0 else None
    return _schedule(
        dag,
        definition,
        page=page,
        page_size=page_size,
        upcoming=upcoming,
        include_skipped=include_skipped,
        statuses=statuses,
        session=session,
    )


@provide_session
def campaign_display(
    dag_id: str, *, page: int = 1, include_skipped: bool = False, session: Session = NEW_SESSION
) -> CampaignDisplay:
    """The campaign display: About and the run schedule, with one read of the serialized DAG."""
    dag = require_campaign(dag_id, session)
    definition = dags.get_definition(dag_id, session)
    schedule = _schedule(
        dag,
        definition,
        page=page,
        page_size=None,
        upcoming=None,
        include_skipped=include_skipped,
        statuses=None,
        session=session,
    )
    return CampaignDisplay(campaign=detail(dag, definition, session), schedule=schedule)


@provide_session
def get_run(dag_id: str, run_id: str, *, session: Session = NEW_SESSION) -> RunView:
    """One run with its status and progress."""
    return run_views(dag_id, [require_run(dag_id, run_id, session)], session)[0]


@provide_session
def run_history(dag_id: str, run_id: str, *, session: Session = NEW_SESSION) -> list[HistoryEntry]:
    """Every action taken on the run, oldest first."""
    dag_run = require_run(dag_id, run_id, session)
    return records.history(dag_id, run_id, session, (dag_run.pk, dag_run.created_at))
