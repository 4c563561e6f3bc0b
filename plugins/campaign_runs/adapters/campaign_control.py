"""Airflow calls behind the campaign actions: params validation, active runs, missed slots, backfills."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from campaign_runs.adapters.dags import MAX_SLOTS_SCANNED, DagDefinition, DagInfo, SlotInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

ACTIVE_STATES = ("queued", "running")
LOCKED_RETRIES = 5


def validated_conf(definition: DagDefinition, conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` merged into the DAG's params and validated as Airflow's trigger does; ``ValueError`` says why."""
    from airflow.sdk.exceptions import ParamValidationError

    unknown = sorted(set(conf) - set(definition.params))
    if unknown:
        raise ValueError(f"unknown param(s) {', '.join(unknown)} (known: {', '.join(sorted(definition.params))})")
    try:
        return dict(definition.dag.params.deep_merge(conf).validate())
    except ParamValidationError as error:
        raise ValueError(str(error)) from error


def active_run_ids(dag_id: str, session: Session) -> list[str]:
    """Runs Airflow has queued or running for ``dag_id``, oldest first."""
    from airflow.models.dagrun import DagRun

    rows = session.scalars(
        select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.state.in_(ACTIVE_STATES)).order_by(DagRun.id)
    )
    return list(rows)


def _slot(info: Any) -> SlotInfo:
    interval = info.data_interval
    return SlotInfo(
        logical_date=info.logical_date,
        data_interval_start=interval.start if interval else None,
        data_interval_end=interval.end if interval else None,
        run_after=info.run_after,
    )


def slots_due(
    definition: DagDefinition, dag: DagInfo, now: datetime, session: Session
) -> tuple[list[SlotInfo], SlotInfo | None]:
    """The slots after the DAG's latest automated run up to ``now``, and the first after ``now``.

    These are the slots missed while the campaign was paused, ``catchup`` aside: all of them (without a run yet,
    from the DAG's next run on).
    """
    from airflow.dag_processing.collection import _get_latest_runs_stmt
    from airflow.timetables.base import TimeRestriction

    timetable = definition.dag.timetable
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True)
    reference = session.scalar(_get_latest_runs_stmt(dag_id=dag.dag_id))
    if reference is not None:
        last = timetable.run_info_from_dag_run(dag_run=reference)
        info = timetable.next_dagrun_info_v2(last_dagrun_info=last, restriction=restriction)
    else:
        info = timetable.next_run_info_from_dag_model(dag_model=dag.model)
    due: list[SlotInfo] = []
    for _ in range(MAX_SLOTS_SCANNED):
        if info is None:
            return due, None
        if info.run_after > now:
            return due, _slot(info)
        due.append(_slot(info))
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
    return due, None


def set_next_slot(dag: DagInfo, slot: SlotInfo | None) -> None:
    """Make ``slot`` the next run the scheduler creates (None: no more runs), in the caller's transaction."""
    model = dag.model
    model.next_dagrun = slot.logical_date if slot else None
    model.next_dagrun_data_interval_start = slot.data_interval_start if slot else None
    model.next_dagrun_data_interval_end = slot.data_interval_end if slot else None
    model.next_dagrun_create_after = slot.run_after if slot else None


def backfill(dag_id: str, slots: Sequence[SlotInfo], user: str, max_active_runs: int) -> int:
    """Airflow's own backfill of ``slots`` (runs not already there); returns the backfill's id. Commits itself."""
    from airflow.models.backfill import ReprocessBehavior, _create_backfill

    dates = [slot.logical_date for slot in slots if slot.logical_date is not None]
    for attempt in range(LOCKED_RETRIES):
        try:
            created = _create_backfill(
                dag_id=dag_id,
                from_date=min(dates),
                to_date=max(dates),
                max_active_runs=max_active_runs,
                reverse=False,
                dag_run_conf=None,
                triggering_user_name=user,
                reprocess_behavior=ReprocessBehavior.NONE,
            )
            return int(created.id)
        except OperationalError as error:  # SQLite: another writer (an email being recorded) held the file
            if "locked" not in str(error) or attempt == LOCKED_RETRIES - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _loaded_timetable(dag_id: str) -> dict[str, Any] | None:
    """The timetable of Airflow's latest serialized ``dag_id`` as stored (no cache: a parse updates it in place)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        serialized = SerializedDagModel.get(dag_id, session=session)
        data = serialized.data if serialized is not None else None
    timetable = ((data or {}).get("dag") or {}).get("timetable")
    return timetable if isinstance(timetable, dict) else None


def loaded_not_before(dag_id: str) -> datetime | None:
    """The "not before" instant of Airflow's latest serialized version of ``dag_id`` (its own short session)."""
    raw = ((_loaded_timetable(dag_id) or {}).get("__var") or {}).get("not_before")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def loaded_schedule_is(dag_id: str, schedule: Any) -> bool:
    """Whether Airflow's latest version of ``dag_id`` has the cron and timezone of ``schedule`` (a ScheduleSpec)."""
    from campaign_runs.factory.schedule import timetable

    found = (_loaded_timetable(dag_id) or {}).get("__var") or {}
    if not schedule.expression:
        return "expression" not in found
    expected = timetable(schedule.expression, schedule.timezone).serialize()
    return bool(found.get("expression") == expected["expression"] and found.get("timezone") == expected["timezone"])


def refresh_next_run(dag: DagInfo, session: Session) -> None:
    """Recompute the DAG's next run from its latest serialized version, as the dag-processor does at each parse."""
    from airflow.dag_processing.collection import _get_latest_runs_stmt
    from airflow.models.serialized_dag import SerializedDagModel

    serialized = SerializedDagModel.get(dag.dag_id, session=session)  # not a cached copy: it may be seconds old
    if serialized is None:
        return
    reference = session.scalar(_get_latest_runs_stmt(dag_id=dag.dag_id))
    dag.model.calculate_dagrun_date_fields(serialized.dag, reference_run=reference)


def next_slot(dag_id: str, schedule: Any, not_before: datetime | None, session: Session) -> SlotInfo | None:
    """The next run a campaign ``schedule`` (a ``ScheduleSpec``) gives after the DAG's latest automated run."""
    import pendulum
    from airflow.dag_processing.collection import _get_latest_runs_stmt
    from airflow.timetables.base import TimeRestriction

    from campaign_runs.factory.schedule import timetable

    table = timetable(schedule.expression, schedule.timezone, not_before)
    reference = session.scalar(_get_latest_runs_stmt(dag_id=dag_id))
    last = table.run_info_from_dag_run(dag_run=reference).data_interval if reference is not None else None
    restriction = TimeRestriction(pendulum.instance(schedule.start_date), None, schedule.catchup)
    info = table.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    return _slot(info) if info is not None else None
