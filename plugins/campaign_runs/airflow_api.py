"""The one module that calls Airflow internals: DAG runs, task instances, timetables, users, email.

Airflow's internals move between releases; everything version-sensitive is kept here.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.models.dag import DagModel, DagTag
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.state import DagRunState, State, TaskInstanceState
from sqlalchemy import and_, func, or_, select, update

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from airflow.serialization.definitions.dag import SerializedDAG
    from sqlalchemy.orm import Session

DAG_RUN_NOTE_MAX = 1000
MAX_SLOTS_SCANNED = 10_000

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
class SlotInfo:
    """One upcoming schedule slot from the timetable."""

    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime


def get_dag_model(dag_id: str, session: Session) -> DagModel | None:
    """The DagModel row of ``dag_id``."""
    return session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))


def dag_has_tag(dag_id: str, tag: str, session: Session) -> bool:
    """Whether ``dag_id`` carries ``tag``."""
    return (session.scalar(select(func.count()).where(DagTag.dag_id == dag_id, DagTag.name == tag)) or 0) > 0


def campaign_dag_ids_query(tag: str) -> Any:
    """A SELECT of the dag_ids tagged as campaigns (for use as a subquery)."""
    return select(DagTag.dag_id).where(DagTag.name == tag)


def tags_of(dag_ids: Sequence[str], session: Session) -> dict[str, list[str]]:
    """Tags of each DAG, in one query."""
    tags: dict[str, list[str]] = defaultdict(list)
    if dag_ids:
        for dag_id, name in session.execute(
            select(DagTag.dag_id, DagTag.name).where(DagTag.dag_id.in_(dag_ids)).order_by(DagTag.name)
        ):
            tags[dag_id].append(name)
    return tags


def owner_links_of(dag_ids: Sequence[str], session: Session) -> dict[str, dict[str, str]]:
    """``owner_links`` of each DAG (owner -> link), in one query."""
    from airflow.models.dag import DagOwnerAttributes

    links: dict[str, dict[str, str]] = defaultdict(dict)
    if dag_ids:
        for dag_id, owner, link in session.execute(
            select(DagOwnerAttributes.dag_id, DagOwnerAttributes.owner, DagOwnerAttributes.link).where(
                DagOwnerAttributes.dag_id.in_(dag_ids)
            )
        ):
            links[dag_id][owner] = link
    return links


def get_serialized_dag(dag_id: str, session: Session) -> SerializedDAG | None:
    """The latest serialized version of ``dag_id``."""
    from airflow.models.dagbag import DBDagBag

    return DBDagBag().get_latest_version_of_dag(dag_id, session=session)


def upcoming_slots(dag: SerializedDAG, dag_model: DagModel, count: int) -> list[SlotInfo]:
    """The next ``count`` slots of the DAG's timetable, as ``airflow dags next-execution`` computes them."""
    from airflow.timetables.base import TimeRestriction

    slots: list[SlotInfo] = []
    if count <= 0:
        return slots
    now = utcnow()
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True)
    info = dag.timetable.next_run_info_from_dag_model(dag_model=dag_model)
    # The DAG's stored next run goes stale while no scheduler runs: skip slots already in the past.
    for _ in range(MAX_SLOTS_SCANNED):
        if info is None or len(slots) >= count:
            break
        if info.run_after >= now:
            interval = info.data_interval
            slots.append(
                SlotInfo(
                    logical_date=info.logical_date,
                    data_interval_start=interval.start if interval else None,
                    data_interval_end=interval.end if interval else None,
                    run_after=info.run_after,
                )
            )
        info = dag.timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
    return slots


def get_dag_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRun | None:
    """The DagRun ``dag_id``/``run_id``; with ``lock`` its row is locked until commit (PostgreSQL)."""
    query = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


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
    return {run_id: count for run_id, count in rows}


def task_state_counts(dag_id: str, run_ids: Iterable[str], session: Session) -> dict[str, dict[str, int]]:
    """Task instance counts per run and state, in one query."""
    ids = list(run_ids)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if not ids:
        return counts
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.state, func.count())
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(ids))
        .group_by(TaskInstance.run_id, TaskInstance.state)
    )
    for run_id, state, count in rows:
        counts[run_id][str(state) if state else "none"] = count
    return counts


def halt_run(dag_run: DagRun, session: Session) -> int:
    """Mark the run failed and its pending tasks skipped, leaving running tasks to end themselves.

    Returns how many task instances are still running. Campaign tasks notice the run is no longer
    ``running`` between batches and end at once; ``force_fail_running`` kills what does not.
    """
    now = utcnow()
    dag_run.set_state(DagRunState.FAILED)
    dag_run.end_date = now
    session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            or_(
                TaskInstance.state.is_(None),
                and_(
                    TaskInstance.state.not_in(DONE_TI_STATES),
                    TaskInstance.state.not_in(RUNNING_TI_STATES),
                ),
            ),
        )
        .values(state=TaskInstanceState.SKIPPED, end_date=now)
        .execution_options(synchronize_session=False)
    )
    return running_task_counts(dag_run.dag_id, [dag_run.run_id], session).get(dag_run.run_id, 0)


def force_fail_running(dag_id: str, run_id: str, session: Session) -> int:
    """Airflow's own mark-failed: running tasks fail and are killed at their next heartbeat."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed

    dag = get_serialized_dag(dag_id, session)
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


def set_run_note(dag_run: DagRun, note: str, user: str) -> None:
    """Write the note to Airflow's own DagRun note (cut to Airflow's limit)."""
    from airflow.models.dagrun import DagRunNote

    if not note:
        return
    if dag_run.dag_run_note is None:
        dag_run.dag_run_note = DagRunNote(content=note[:DAG_RUN_NOTE_MAX], user_id=user[:128])
    else:
        dag_run.dag_run_note.content = note[:DAG_RUN_NOTE_MAX]
        dag_run.dag_run_note.user_id = user[:128]


def trigger_run(dag_id: str, *, run_id: str, conf: dict[str, Any], user: str, note: str, session: Session) -> DagRun:
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
        note=note[:DAG_RUN_NOTE_MAX] or None,
        session=session,
    )
    if dag_run is None:
        raise RuntimeError(f"Airflow did not create a run for {dag_id}")
    return dag_run


def set_paused(dag_model: DagModel, paused: bool) -> None:
    """Pause or unpause a DAG."""
    dag_model.is_paused = paused


WORKLIST_ADMIN_RESOURCE = "Users"


def is_worklist_admin(user: Any) -> bool:
    """Whether ``user`` may see everyone's work list and reassign entries: who may edit users (Admin)."""
    from airflow.api_fastapi.app import get_auth_manager

    return bool(
        get_auth_manager().is_authorized_custom_view(method="PUT", resource_name=WORKLIST_ADMIN_RESOURCE, user=user)
    )


def user_email(username: str, session: Session) -> tuple[bool, str | None]:
    """``(exists, email)`` of a user in the FAB user store."""
    from airflow.providers.fab.auth_manager.models import User

    row = session.execute(select(User.email).where(User.username == username)).first()
    if row is None:
        return False, None
    return True, (row[0] or None)


def send_email(to: str, subject: str, html: str, message_id: str) -> None:
    """Send through Airflow's email utilities (``[email] email_backend``, ``[smtp]``)."""
    from airflow.utils.email import send_email as airflow_send_email

    airflow_send_email(to=[to], subject=subject, html_content=html, custom_headers={"Message-ID": message_id})


def utcnow() -> datetime:
    """Aware UTC now, as Airflow stores it."""
    return _dt.datetime.now(_dt.UTC)
