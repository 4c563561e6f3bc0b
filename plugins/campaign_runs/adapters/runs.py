"""DAG runs and their task instances: reads for the run schedule, and the writes Stop, Restart and Skip make."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.models.dagrun import DagRun, DagRunNote
from airflow.models.taskinstance import TaskInstance
from airflow.utils.state import DagRunState, State, TaskInstanceState
from sqlalchemy import and_, case, func, or_, select, update

from campaign_runs.domain import RecordStatus, RunStatus, shorten, utcnow
from campaign_runs.tables import run_record

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

DAG_RUN_NOTE_MAX = 1000  # Airflow's DagRunNote.content: a longer note is kept whole by the plugin, shortened here

# A task instance in one of these states still has (or may still get) a live process.
RUNNING_TI_STATES: tuple[str, ...] = (
    TaskInstanceState.RUNNING,
    TaskInstanceState.DEFERRED,
    TaskInstanceState.UP_FOR_RESCHEDULE,
    TaskInstanceState.AWAITING_INPUT,
    TaskInstanceState.RESTARTING,
)
DONE_TI_STATES: tuple[str, ...] = tuple(str(s) for s in State.finished)


@dataclass(frozen=True)
class DagRunInfo:
    """What the core reads of a DagRun row."""

    pk: int
    dag_id: str
    run_id: str
    state: str | None
    run_type: str | None
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    triggering_user: str | None
    conf: dict[str, Any]
    clear_number: int = 0
    created_at: datetime | None = None


def _info(dag_run: DagRun) -> DagRunInfo:
    return DagRunInfo(
        pk=dag_run.id,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        state=str(dag_run.state) if dag_run.state else None,
        run_type=str(dag_run.run_type) if dag_run.run_type else None,
        logical_date=dag_run.logical_date,
        data_interval_start=dag_run.data_interval_start,
        data_interval_end=dag_run.data_interval_end,
        run_after=dag_run.run_after,
        start_date=dag_run.start_date,
        end_date=dag_run.end_date,
        triggering_user=dag_run.triggering_user_name,
        conf=dict(dag_run.conf or {}),
        clear_number=int(dag_run.clear_number or 0),
        created_at=dag_run.created_at,
    )


def _dag_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRun | None:
    query = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def get_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRunInfo | None:
    """The DagRun ``dag_id``/``run_id``; with ``lock`` its row is locked until commit (PostgreSQL)."""
    dag_run = _dag_run(dag_id, run_id, session, lock=lock)
    return _info(dag_run) if dag_run is not None else None


def _with_record() -> Any:
    """Join a DagRun to its record: the record of a deleted run whose run_id was reused does not join."""
    return and_(
        run_record.c.dag_id == DagRun.dag_id,
        run_record.c.run_id == DagRun.run_id,
        _same_dag_run(),
    )


def _same_dag_run() -> Any:
    """SQL twin of ``domain.record_belongs``."""
    return or_(
        run_record.c.dag_run_id.is_(None),
        and_(
            run_record.c.dag_run_id == DagRun.id,
            or_(run_record.c.dag_run_created_at.is_(None), run_record.c.dag_run_created_at == DagRun.created_at),
        ),
    )


def _record_applies() -> Any:
    """SQL twin of ``domain.applied_record_status``: Airflow still has the run as the plugin left it."""
    return and_(
        or_(run_record.c.clear_number.is_(None), run_record.c.clear_number == DagRun.clear_number),
        DagRun.state == DagRunState.FAILED.value,
    )


def record_status_column() -> Any:
    """The record's status while it still applies, else NULL (for reading; filters use ``_record_is``)."""
    return case((_record_applies(), run_record.c.status), else_=None)


def _record_is(status: str | None) -> Any:
    """The displayed record status is ``status`` (None: the run shows Airflow's own state).

    Written with the plain column first, so the database can use its index on the status.
    """
    if status is None:
        return or_(run_record.c.status.is_(None), ~_record_applies())
    return and_(run_record.c.status == status, _record_applies())


def latest_runs(dag_ids: Sequence[str], session: Session) -> dict[str, tuple[str, str | None, str | None]]:
    """The newest run of each DAG: ``dag_id -> (run_id, state, record status)``, in one query."""
    if not dag_ids:
        return {}
    latest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(dag_ids)).group_by(DagRun.dag_id).scalar_subquery()
    rows = session.execute(
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, record_status_column().label("status"))
        .outerjoin(run_record, _with_record())
        .where(DagRun.id.in_(latest))
    )
    return {row.dag_id: (row.run_id, str(row.state) if row.state else None, row.status) for row in rows}


def records_overridden_in_airflow(session: Session, limit: int = 100) -> list[tuple[Any, DagRunInfo | None]]:
    """Records Airflow has overridden, with their run (None when deleted): cleared, marked, or gone.

    The SQL twin of ``core.reconcile.is_superseded`` plus "the run no longer exists"; one query.
    """
    overridden = or_(
        DagRun.id.is_(None),
        ~_same_dag_run(),
        and_(
            run_record.c.status.is_not(None),
            or_(
                and_(run_record.c.clear_number.is_not(None), run_record.c.clear_number != DagRun.clear_number),
                DagRun.state != DagRunState.FAILED.value,
                DagRun.state.is_(None),
            ),
        ),
    )
    rows = session.execute(
        select(run_record, DagRun)
        .outerjoin(DagRun, and_(DagRun.dag_id == run_record.c.dag_id, DagRun.run_id == run_record.c.run_id))
        .where(overridden)
        .order_by(run_record.c.updated_at)
        .limit(limit)
    ).all()
    return [(row, _info(row.DagRun) if row.DagRun is not None else None) for row in rows]


def active_run_counts(dag_ids: Sequence[str], session: Session) -> dict[str, int]:
    """Queued and running runs per DAG, in one query."""
    if not dag_ids:
        return {}
    rows = session.execute(
        select(DagRun.dag_id, func.count())
        .where(DagRun.dag_id.in_(dag_ids), DagRun.state.in_(["queued", "running"]))
        .group_by(DagRun.dag_id)
    )
    return {dag_id: int(count) for dag_id, count in rows}


def _status_clause(statuses: Sequence[RunStatus]) -> Any:
    clauses = []
    for wanted in statuses:
        if wanted in (RunStatus.STOPPING, RunStatus.STOPPED, RunStatus.SKIPPED):
            clauses.append(_record_is(wanted.value))
        elif wanted is RunStatus.COMPLETED:
            clauses.append(and_(_record_is(None), DagRun.state == "success"))
        elif wanted in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED):
            clauses.append(and_(_record_is(None), DagRun.state == wanted.value))
    return or_(*clauses) if clauses else None


def schedule_page(
    dag_id: str,
    *,
    include_skipped: bool,
    statuses: Sequence[RunStatus],
    limit: int,
    offset: int,
    session: Session,
) -> tuple[list[DagRunInfo], int]:
    """A page of the DAG's runs, newest first, filtered by displayed status; and the total."""
    hide_skipped = not include_skipped and RunStatus.SKIPPED not in statuses
    clause = _status_clause(statuses)
    if clause is None and hide_skipped:
        total = _count_without_skipped(dag_id, session)
    else:
        counted = select(func.count(DagRun.id)).outerjoin(run_record, _with_record()).where(DagRun.dag_id == dag_id)
        total = session.scalar(_filtered(counted, hide_skipped, clause)) or 0
    # Sort narrow rows (ids), then load only the page: sorting whole DagRun rows costs far more.
    ids = _filtered(select(DagRun.id).outerjoin(run_record, _with_record()), hide_skipped, clause)
    ids = ids.where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc(), DagRun.id.desc())
    page = select(DagRun).where(DagRun.id.in_(ids.limit(limit).offset(offset).scalar_subquery()))
    rows = session.scalars(page.order_by(DagRun.run_after.desc(), DagRun.id.desc()))
    return [_info(dr) for dr in rows], total


def _filtered(query: Any, hide_skipped: bool, clause: Any) -> Any:
    if hide_skipped:
        skipped = RecordStatus.SKIPPED.value  # NULL-safe: a run without a record is not skipped
        query = query.where(or_(run_record.c.status.is_(None), run_record.c.status != skipped, ~_record_applies()))
    return query.where(clause) if clause is not None else query


def _count_without_skipped(dag_id: str, session: Session) -> int:
    """Runs of the DAG that are not skipped: all runs minus skipped ones, instead of counting a join of all."""
    runs = session.scalar(select(func.count(DagRun.id)).where(DagRun.dag_id == dag_id)) or 0
    skipped = session.scalar(  # records of deleted runs stay behind: count only those with a run
        select(func.count())
        .select_from(run_record)
        .join(DagRun, _with_record())
        .where(run_record.c.dag_id == dag_id, _record_is(RecordStatus.SKIPPED.value))
    )
    return int(runs) - int(skipped or 0)


def notes_of(run_pks: Sequence[int], session: Session) -> dict[int, str | None]:
    """Airflow's DagRun note of each run (by DagRun primary key), in one query."""
    if not run_pks:
        return {}
    rows = session.execute(
        select(DagRunNote.dag_run_id, DagRunNote.content).where(DagRunNote.dag_run_id.in_(list(run_pks)))
    )
    return {pk: content for pk, content in rows}


def run_after_of(dag_id: str, run_ids: Iterable[str], session: Session) -> dict[str, datetime | None]:
    """When each of the campaign's runs was due (``run_after``), in one query."""
    ids = list(run_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(DagRun.run_id, DagRun.run_after).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(ids))
    )
    return {run_id: run_after for run_id, run_after in rows}


def running_task_counts(dag_id: str, run_ids: Iterable[str], session: Session) -> dict[str, int]:
    """Task instances per run that still have a live process, in one query."""
    ids = list(run_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(TaskInstance.run_id, func.count())
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id.in_(ids),
            TaskInstance.state.in_(RUNNING_TI_STATES),
        )
        .group_by(TaskInstance.run_id)
    )
    return {run_id: int(count) for run_id, count in rows}


def task_progress(dag_id: str, run_ids: Iterable[str], session: Session) -> dict[str, tuple[int, int]]:
    """``run_id -> (finished task instances, all task instances)``, in one query."""
    ids = list(run_ids)
    if not ids:
        return {}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.state, func.count())
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(ids))
        .group_by(TaskInstance.run_id, TaskInstance.state)
    )
    for run_id, state, count in rows:
        counts[run_id][1] += count
        if state is not None and str(state) in DONE_TI_STATES:
            counts[run_id][0] += count
    return {run_id: (done, total) for run_id, (done, total) in counts.items()}


def halt_run(dag_id: str, run_id: str, session: Session) -> int:
    """Mark the run failed and its pending tasks skipped, leaving running tasks to end themselves.

    Returns how many task instances are still running; ``force_fail_running`` kills what does not end.
    """
    dag_run = _dag_run(dag_id, run_id, session)
    if dag_run is None:
        return 0
    now = utcnow()
    dag_run.set_state(DagRunState.FAILED)
    dag_run.end_date = now
    session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            or_(
                TaskInstance.state.is_(None),
                and_(TaskInstance.state.not_in(DONE_TI_STATES), TaskInstance.state.not_in(RUNNING_TI_STATES)),
            ),
        )
        .values(state=TaskInstanceState.SKIPPED, end_date=now)
        .execution_options(synchronize_session=False)
    )
    return running_task_counts(dag_id, [run_id], session).get(run_id, 0)


def force_fail_running(dag_id: str, run_id: str, session: Session) -> int:
    """Airflow's own mark-failed (commits): running tasks fail and are killed at their next heartbeat."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagbag import DBDagBag

    dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
    if dag is None:
        return 0
    _, killed = set_dag_run_state_to_failed(dag=dag, run_id=run_id, commit=True, session=session)
    return len(killed)


def release_tasks(dag_id: str, run_id: str, session: Session) -> int:
    """Set every unsuccessful task instance of a run to skipped, so later runs are not blocked."""
    result = session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            or_(
                TaskInstance.state.is_(None),
                TaskInstance.state.not_in([TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED]),
            ),
        )
        .values(state=TaskInstanceState.SKIPPED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def set_run_note(dag_id: str, run_id: str, note: str, user: str, session: Session) -> None:
    """Write the note to Airflow's own DagRun note (cut to Airflow's limit)."""
    dag_run = _dag_run(dag_id, run_id, session)
    if not note or dag_run is None:
        return
    if dag_run.dag_run_note is None:
        dag_run.dag_run_note = DagRunNote(content=shorten(note, DAG_RUN_NOTE_MAX), user_id=user[:128])  # type: ignore[no-untyped-call]
    else:
        dag_run.dag_run_note.content = shorten(note, DAG_RUN_NOTE_MAX)
        dag_run.dag_run_note.user_id = user[:128]


def trigger_run(
    dag_id: str, *, run_id: str, conf: dict[str, Any], user: str, note: str, session: Session
) -> DagRunInfo:
    """Create a new manual run (QUEUED) that the scheduler starts."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag_run = trigger_dag(
        dag_id,
        triggered_by=DagRunTriggeredByType.REST_API,
        run_type=DagRunType.MANUAL,
        triggering_user_name=user,
        run_id=run_id,
        conf=conf,
        logical_date=None,
        note=shorten(note, DAG_RUN_NOTE_MAX) or None,
        session=session,
    )
    if dag_run is None:
        raise RuntimeError(f"Airflow did not create a run for {dag_id}")
    session.flush()
    return _info(dag_run)
