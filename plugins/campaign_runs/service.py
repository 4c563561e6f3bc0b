"""Campaign Runs business functions: one transaction each, shared by views, API, CLI and listeners.

Every function takes ``session: Session = NEW_SESSION``; with a session of its own it commits on
success. Domain errors (``campaign_runs.domain``) are raised before anything is changed, or after a
rollback, so a refused request changes nothing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun, DagRunNote
from airflow.utils.session import NEW_SESSION, create_session, provide_session
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from campaign_runs import airflow_api, links, notify
from campaign_runs.domain import (
    ALLOWED_FROM,
    RESULT_OF,
    Action,
    ActionNotAllowedError,
    CampaignPausedError,
    ConflictError,
    NotACampaignError,
    NotFoundError,
    RecordStatus,
    RunStatus,
    allowed_actions,
    derive_status,
    validate_note,
)
from campaign_runs.models import run_action, run_record, worklist_entry
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

RESTART_CONF_RUN = "campaign_restart_of"
RESTART_CONF_SLOT = "campaign_slot"


@dataclass(frozen=True)
class CampaignSummary:
    """One campaign as listed."""

    dag_id: str
    description: str
    owners: list[str]
    owner_emails: list[str]
    channels: list[str]
    audience: str
    schedule: str | None
    schedule_description: str | None
    is_paused: bool
    next_run_after: datetime | None
    last_run_id: str | None
    last_status: str | None
    active_runs: int
    open_worklist: int


@dataclass(frozen=True)
class CampaignDetail:
    """A campaign's About section."""

    summary: CampaignSummary
    timezone: str
    doc_md: str | None
    params: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True)
class RunView:
    """One run of a campaign as people see it."""

    dag_id: str
    run_id: str
    status: str
    dag_run_state: str | None
    run_type: str | None
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    triggering_user: str | None
    note: str | None
    tasks_total: int
    tasks_done: int
    restart_of: str | None
    replaced_by: str | None
    allowed_actions: list[str]

    @property
    def duration_seconds(self) -> float | None:
        if self.start_date is None:
            return None
        end = self.end_date or airflow_api.utcnow()
        return max(0.0, (end - self.start_date).total_seconds())

    @property
    def progress_percent(self) -> int:
        return int(100 * self.tasks_done / self.tasks_total) if self.tasks_total else 0


@dataclass(frozen=True)
class UpcomingRun:
    """A slot of the timetable that has no run yet."""

    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime
    status: str = RunStatus.SCHEDULED.value


@dataclass(frozen=True)
class RunSchedule:
    """A campaign's run schedule: upcoming slots first, then a page of past runs, newest first."""

    dag_id: str
    upcoming: list[UpcomingRun]
    runs: list[RunView]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded action."""

    id: int
    action: str
    actor: str
    note: str
    status_before: str
    status_after: str
    new_run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ActionResult:
    """What an action did."""

    action_id: int
    action: str
    dag_id: str
    run_id: str
    actor: str
    status_before: str
    status_after: str
    new_run_id: str | None = None
    outbox_ids: list[int] = field(default_factory=list)
    replayed: bool = False


@dataclass(frozen=True)
class WorklistItem:
    """A run assigned to a person."""

    id: int
    dag_id: str
    run_id: str
    assignee: str
    reason: str
    note: str
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


# ---------------------------------------------------------------- reading


def _campaign_filter() -> Any:
    return DagModel.dag_id.in_(airflow_api.campaign_dag_ids_query(get_settings().campaign_tag))


def _require_campaign(dag_id: str, session: Session) -> DagModel:
    dag_model = airflow_api.get_dag_model(dag_id, session)
    if dag_model is None:
        raise NotFoundError(f"Campaign {dag_id!r} does not exist.")
    if not airflow_api.dag_has_tag(dag_id, get_settings().campaign_tag, session):
        raise NotACampaignError(f"DAG {dag_id!r} is not a campaign (it has no {get_settings().campaign_tag!r} tag).")
    return dag_model


def _require_run(dag_id: str, run_id: str, session: Session, *, lock: bool = False) -> DagRun:
    _require_campaign(dag_id, session)
    dag_run = airflow_api.get_dag_run(dag_id, run_id, session, lock=lock)
    if dag_run is None:
        raise NotFoundError(f"Run {run_id!r} of campaign {dag_id!r} does not exist.")
    return dag_run


def _require_user(username: str, session: Session) -> str | None:
    exists, email = airflow_api.user_email(username, session)
    if not exists:
        raise NotFoundError(f"User {username!r} does not exist.")
    return email


def _records(dag_id: str, run_ids: Sequence[str], session: Session) -> dict[str, Any]:
    if not run_ids:
        return {}
    rows = session.execute(
        select(run_record).where(run_record.c.dag_id == dag_id, run_record.c.run_id.in_(list(run_ids)))
    )
    return {row.run_id: row for row in rows}


def _status_of(dag_run_state: str | None, record: Any, running: int) -> RunStatus:
    return derive_status(dag_run_state, record.status if record is not None else None, running)


@provide_session
def list_campaigns(
    *,
    search: str | None = None,
    dag_ids: Sequence[str] | None = None,
    sort: str = "dag_id",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
    session: Session = NEW_SESSION,
) -> tuple[list[CampaignSummary], int]:
    """Campaigns (optionally only ``dag_ids``, matching ``search``), a page of them and the total."""
    query = select(DagModel).where(_campaign_filter(), DagModel.is_stale.is_(False))
    if dag_ids is not None:
        query = query.where(DagModel.dag_id.in_(list(dag_ids)))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(DagModel.dag_id).like(pattern),
                func.lower(func.coalesce(DagModel.description, "")).like(pattern),
                func.lower(func.coalesce(DagModel.owners, "")).like(pattern),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    sort_columns = {
        "dag_id": DagModel.dag_id,
        "owner": DagModel.owners,
        "next_run": DagModel.next_dagrun_create_after,
        "paused": DagModel.is_paused,
    }
    column = sort_columns.get(sort, DagModel.dag_id)
    query = query.order_by(column.desc() if descending else column.asc(), DagModel.dag_id)
    models = list(session.scalars(query.limit(limit).offset(offset)))
    return _summaries(models, session), total


def _summaries(models: list[DagModel], session: Session) -> list[CampaignSummary]:
    ids = [m.dag_id for m in models]
    if not ids:
        return []
    tags = airflow_api.tags_of(ids, session)
    owner_links = airflow_api.owner_links_of(ids, session)
    latest_ids = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(ids)).group_by(DagRun.dag_id).scalar_subquery()
    last_runs = {
        row.dag_id: row
        for row in session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state, run_record.c.status)
            .outerjoin(run_record, and_(run_record.c.dag_id == DagRun.dag_id, run_record.c.run_id == DagRun.run_id))
            .where(DagRun.id.in_(latest_ids))
        )
    }
    active: dict[str, int] = dict(
        session.execute(
            select(DagRun.dag_id, func.count())
            .where(DagRun.dag_id.in_(ids), DagRun.state.in_(["queued", "running"]))
            .group_by(DagRun.dag_id)
        ).all()
    )
    open_entries: dict[str, int] = dict(
        session.execute(
            select(worklist_entry.c.dag_id, func.count())
            .where(worklist_entry.c.dag_id.in_(ids), worklist_entry.c.resolved_at.is_(None))
            .group_by(worklist_entry.c.dag_id)
        ).all()
    )
    summaries = []
    for model in models:
        dag_tags = tags.get(model.dag_id, [])
        last = last_runs.get(model.dag_id)
        last_status = None
        if last is not None:
            # A "stopping" record is shown as such here; the run page resolves it exactly.
            last_status = derive_status(last.state, last.status, 1).value
        summaries.append(
            CampaignSummary(
                dag_id=model.dag_id,
                description=model.description or "",
                owners=[o.strip() for o in (model.owners or "").split(",") if o.strip()],
                owner_emails=[
                    link.removeprefix("mailto:")
                    for link in owner_links.get(model.dag_id, {}).values()
                    if link.startswith("mailto:")
                ],
                channels=[t.split(":", 1)[1] for t in dag_tags if t.startswith("channel:")],
                audience=next((t.split(":", 1)[1] for t in dag_tags if t.startswith("audience:")), ""),
                schedule=model.timetable_summary,
                schedule_description=model.timetable_description,
                is_paused=bool(model.is_paused),
                next_run_after=model.next_dagrun_create_after,
                last_run_id=last.run_id if last is not None else None,
                last_status=last_status,
                active_runs=int(active.get(model.dag_id, 0)),
                open_worklist=int(open_entries.get(model.dag_id, 0)),
            )
        )
    return summaries


@provide_session
def get_campaign(dag_id: str, *, session: Session = NEW_SESSION) -> CampaignDetail:
    """A campaign's About information."""
    model = _require_campaign(dag_id, session)
    summary = _summaries([model], session)[0]
    dag = airflow_api.get_serialized_dag(dag_id, session)
    params: dict[str, Any] = {}
    timezone = "UTC"
    doc_md = None
    if dag is not None:
        params = {key: dag.params[key] for key in dag.params} if dag.params else {}
        timezone = str(getattr(dag.timetable, "_timezone", None) or dag.timezone)
        doc_md = dag.doc_md
    return CampaignDetail(
        summary=summary,
        timezone=timezone,
        doc_md=doc_md,
        params=params,
        tags=airflow_api.tags_of([dag_id], session).get(dag_id, []),
    )


@provide_session
def upcoming_runs(dag_id: str, count: int | None = None, *, session: Session = NEW_SESSION) -> list[UpcomingRun]:
    """The next ``count`` slots from the campaign's timetable (none when paused or unscheduled)."""
    model = _require_campaign(dag_id, session)
    dag = airflow_api.get_serialized_dag(dag_id, session)
    if dag is None:
        return []
    wanted = get_settings().upcoming_runs if count is None else count
    return [
        UpcomingRun(s.logical_date, s.data_interval_start, s.data_interval_end, s.run_after)
        for s in airflow_api.upcoming_slots(dag, model, wanted)
    ]


def _status_filter(statuses: Sequence[str]) -> Any:
    status = run_record.c.status
    clauses = []
    for value in statuses:
        wanted = RunStatus(value)
        if wanted in (RunStatus.STOPPING, RunStatus.STOPPED, RunStatus.SKIPPED):
            clauses.append(status == wanted.value)
        elif wanted is RunStatus.COMPLETED:
            clauses.append(and_(status.is_(None), DagRun.state == "success"))
        elif wanted in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED):
            clauses.append(and_(status.is_(None), DagRun.state == wanted.value))
    return or_(*clauses) if clauses else None


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
    """Upcoming slots and a page of past runs, newest first; skipped runs only when asked."""
    _require_campaign(dag_id, session)
    size = page_size or get_settings().page_size
    page = max(1, page)
    query = (
        select(DagRun, run_record.c.status)
        .outerjoin(run_record, and_(run_record.c.dag_id == DagRun.dag_id, run_record.c.run_id == DagRun.run_id))
        .where(DagRun.dag_id == dag_id)
    )
    if not include_skipped and not (statuses and RunStatus.SKIPPED.value in statuses):
        query = query.where(or_(run_record.c.status.is_(None), run_record.c.status != RecordStatus.SKIPPED.value))
    if statuses:
        status_clause = _status_filter(statuses)
        if status_clause is not None:
            query = query.where(status_clause)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(size).offset((page - 1) * size)
    ).all()
    runs = _run_views(dag_id, [row[0] for row in rows], session)
    return RunSchedule(
        dag_id=dag_id,
        upcoming=upcoming_runs(dag_id, upcoming, session=session) if page == 1 else [],
        runs=runs,
        total=total,
        page=page,
        page_size=size,
    )


def _run_views(dag_id: str, dag_runs: list[DagRun], session: Session) -> list[RunView]:
    run_ids = [dr.run_id for dr in dag_runs]
    records = _records(dag_id, run_ids, session)
    stopping = [rid for rid, rec in records.items() if rec.status == RecordStatus.STOPPING]
    running = airflow_api.running_task_counts(dag_id, stopping, session)
    counts = airflow_api.task_state_counts(dag_id, run_ids, session)
    notes = (
        dict(
            session.execute(
                select(DagRunNote.dag_run_id, DagRunNote.content).where(
                    DagRunNote.dag_run_id.in_([dr.id for dr in dag_runs])
                )
            ).all()
        )
        if dag_runs
        else {}
    )
    views = []
    for dr in dag_runs:
        record = records.get(dr.run_id)
        status = _status_of(dr.state, record, running.get(dr.run_id, 0))
        state_counts = counts.get(dr.run_id, {})
        done = sum(n for state, n in state_counts.items() if state in airflow_api.DONE_TI_STATES)
        views.append(
            RunView(
                dag_id=dag_id,
                run_id=dr.run_id,
                status=status.value,
                dag_run_state=str(dr.state) if dr.state else None,
                run_type=str(dr.run_type) if dr.run_type else None,
                logical_date=dr.logical_date,
                data_interval_start=dr.data_interval_start,
                data_interval_end=dr.data_interval_end,
                run_after=dr.run_after,
                start_date=dr.start_date,
                end_date=dr.end_date,
                triggering_user=dr.triggering_user_name,
                note=notes.get(dr.id),
                tasks_total=sum(state_counts.values()),
                tasks_done=done,
                restart_of=record.restart_of_run_id if record is not None else None,
                replaced_by=record.replaced_by_run_id if record is not None else None,
                allowed_actions=[a.value for a in allowed_actions(status)],
            )
        )
    return views


@provide_session
def get_run(dag_id: str, run_id: str, *, session: Session = NEW_SESSION) -> RunView:
    """One run with its status and progress."""
    return _run_views(dag_id, [_require_run(dag_id, run_id, session)], session)[0]


@provide_session
def run_history(dag_id: str, run_id: str, *, session: Session = NEW_SESSION) -> list[HistoryEntry]:
    """Every action taken on the run, oldest first."""
    _require_run(dag_id, run_id, session)
    rows = session.execute(
        select(run_action).where(run_action.c.dag_id == dag_id, run_action.c.run_id == run_id).order_by(run_action.c.id)
    )
    return [
        HistoryEntry(r.id, r.action, r.actor, r.note, r.status_before, r.status_after, r.new_run_id, r.created_at)
        for r in rows
    ]


# ---------------------------------------------------------------- acting


def _replay(actor: str, idempotency_key: str | None, session: Session) -> ActionResult | None:
    if not idempotency_key:
        return None
    row = session.execute(
        select(run_action).where(run_action.c.actor == actor, run_action.c.idempotency_key == idempotency_key)
    ).first()
    if row is None:
        return None
    return ActionResult(
        action_id=row.id,
        action=row.action,
        dag_id=row.dag_id,
        run_id=row.run_id,
        actor=row.actor,
        status_before=row.status_before,
        status_after=row.status_after,
        new_run_id=row.new_run_id,
        replayed=True,
    )


def _transition(session: Session, dag_id: str, run_id: str, record: Any, values: dict[str, Any]) -> None:
    """Compare-and-set the run's record: exactly one of concurrent writers succeeds."""
    now = airflow_api.utcnow()
    if record is None:
        session.execute(insert(run_record).values(dag_id=dag_id, run_id=run_id, version=1, updated_at=now, **values))
        session.flush()
        return
    result = session.execute(
        update(run_record)
        .where(
            run_record.c.dag_id == dag_id,
            run_record.c.run_id == run_id,
            run_record.c.version == record.version,
        )
        .values(version=record.version + 1, updated_at=now, **values)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConflictError(f"Run {run_id!r} was changed by someone else at the same time; reload and retry.")


def _record_action(
    session: Session,
    *,
    dag_id: str,
    run_id: str,
    action: Action,
    actor: str,
    note: str,
    before: RunStatus,
    after: RunStatus,
    new_run_id: str | None = None,
    idempotency_key: str | None = None,
) -> int:
    action_id = session.execute(
        insert(run_action)
        .returning(run_action.c.id)
        .values(
            dag_id=dag_id,
            run_id=run_id,
            action=action.value,
            actor=actor,
            note=note,
            status_before=before.value,
            status_after=after.value,
            new_run_id=new_run_id,
            idempotency_key=idempotency_key or None,
            created_at=airflow_api.utcnow(),
        )
    ).scalar_one()
    return int(action_id)


def _resolve_worklist(session: Session, dag_id: str, run_id: str, actor: str, resolution: str) -> None:
    session.execute(
        update(worklist_entry)
        .where(
            worklist_entry.c.dag_id == dag_id,
            worklist_entry.c.run_id == run_id,
            worklist_entry.c.resolved_at.is_(None),
        )
        .values(resolved_at=airflow_api.utcnow(), resolved_by=actor, resolution=resolution)
    )


def _email_context(dag_id: str, run_id: str, note: str, new_run_id: str | None = None) -> dict[str, Any]:
    base = get_settings().base_url
    context: dict[str, Any] = {
        "note": note,
        "campaign_url": links.absolute(base, links.campaign_path(dag_id)),
        "run_url": links.absolute(base, links.run_path(dag_id, run_id)),
        "new_run_id": new_run_id or "",
    }
    if new_run_id:
        context["new_run_url"] = links.absolute(base, links.run_path(dag_id, new_run_id))
    return context


def _prepare(
    action: Action, dag_id: str, run_id: str, actor: str, note: str | None, session: Session
) -> tuple[str, DagRun, Any, RunStatus]:
    """Validate input and load the run, its record and status; raise before changing anything."""
    settings = get_settings()
    cleaned = validate_note(note, required=settings.note_required, max_length=settings.note_max_length)
    _require_user(actor, session)
    dag_run = _require_run(dag_id, run_id, session, lock=True)
    record = _records(dag_id, [run_id], session).get(run_id)
    running = airflow_api.running_task_counts(dag_id, [run_id], session).get(run_id, 0)
    status = _status_of(dag_run.state, record, running)
    if status not in ALLOWED_FROM[action]:
        raise ActionNotAllowedError(action, status)
    return cleaned, dag_run, record, status


def _guarded(session: Session, work: Any) -> ActionResult:
    """Run ``work`` and turn a lost race into ``ConflictError`` after a rollback."""
    try:
        result: ActionResult = work()
        session.flush()
    except (IntegrityError, OperationalError) as error:
        session.rollback()
        raise ConflictError("Another action on this run was taken at the same time; reload and retry.") from error
    except Exception:
        session.rollback()
        raise
    return result


@provide_session
def stop_run(
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    idempotency_key: str | None = None,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Stop an active run: it reads ``stopping`` until no task runs, then ``stopped`` (email, work list)."""
    if (replayed := _replay(actor, idempotency_key, session)) is not None:
        return replayed
    cleaned, dag_run, record, status = _prepare(Action.STOP, dag_id, run_id, actor, note, session)

    def work() -> ActionResult:
        now = airflow_api.utcnow()
        _transition(
            session,
            dag_id,
            run_id,
            record,
            {"status": RecordStatus.STOPPING.value, "stop_requested_by": actor, "stop_requested_at": now},
        )
        airflow_api.halt_run(dag_run, session)
        airflow_api.set_run_note(dag_run, cleaned, actor)
        action_id = _record_action(
            session,
            dag_id=dag_id,
            run_id=run_id,
            action=Action.STOP,
            actor=actor,
            note=cleaned,
            before=status,
            after=RESULT_OF[Action.STOP],
            idempotency_key=idempotency_key,
        )
        return ActionResult(action_id, Action.STOP.value, dag_id, run_id, actor, status.value, "stopping")

    return _guarded(session, work)


def _mark_skipped(
    action: Action,
    dag_id: str,
    run_id: str,
    actor: str,
    note: str | None,
    idempotency_key: str | None,
    unpause: bool,
    session: Session,
) -> ActionResult:
    if (replayed := _replay(actor, idempotency_key, session)) is not None:
        return replayed
    cleaned, dag_run, record, status = _prepare(action, dag_id, run_id, actor, note, session)
    dag_model = airflow_api.get_dag_model(dag_id, session)
    if action is Action.RESTART and dag_model is not None and dag_model.is_paused and not unpause:
        raise CampaignPausedError(
            f"Campaign {dag_id!r} is paused, so a restarted run would not start. "
            "Unpause the campaign first, or ask to unpause it with the restart."
        )

    def work() -> ActionResult:
        new_run_id = None
        values: dict[str, Any] = {"status": RecordStatus.SKIPPED.value}
        if action is Action.RESTART:
            stamp = airflow_api.utcnow().strftime("%Y%m%dT%H%M%S%f")
            new_run_id = f"restart__{stamp}__{run_id}"[:250]
            values["replaced_by_run_id"] = new_run_id
        finished = _finish_pending_stop(session, dag_id, run_id, record)
        current = _records(dag_id, [run_id], session).get(run_id) if finished is not None else record
        _transition(session, dag_id, run_id, current, values)
        airflow_api.release_tasks(dag_id, run_id, session)
        airflow_api.set_run_note(dag_run, cleaned, actor)
        if action is Action.RESTART and new_run_id is not None:
            if dag_model is not None and dag_model.is_paused:
                airflow_api.set_paused(dag_model, False)
            # A restart of a restart keeps the original run and slot, so the campaign's delivery
            # ledger sees one slot however often it is restarted; our records link each step.
            previous = dag_run.conf or {}
            slot = previous.get(RESTART_CONF_SLOT) or {
                "logical_date": _iso(dag_run.logical_date),
                "data_interval_start": _iso(dag_run.data_interval_start),
                "data_interval_end": _iso(dag_run.data_interval_end),
            }
            original = previous.get(RESTART_CONF_RUN) or run_id
            conf = {**previous, RESTART_CONF_RUN: original, RESTART_CONF_SLOT: slot}
            airflow_api.trigger_run(dag_id, run_id=new_run_id, conf=conf, user=actor, note=cleaned, session=session)
            session.execute(
                insert(run_record).values(
                    dag_id=dag_id,
                    run_id=new_run_id,
                    version=1,
                    restart_of_run_id=run_id,
                    updated_at=airflow_api.utcnow(),
                )
            )
        _resolve_worklist(session, dag_id, run_id, actor, "restarted" if action is Action.RESTART else "skipped")
        action_id = _record_action(
            session,
            dag_id=dag_id,
            run_id=run_id,
            action=action,
            actor=actor,
            note=cleaned,
            before=status,
            after=RunStatus.SKIPPED,
            new_run_id=new_run_id,
            idempotency_key=idempotency_key,
        )
        outbox_id = notify.enqueue(
            session,
            kind="restarted" if action is Action.RESTART else "skipped",
            dag_id=dag_id,
            run_id=run_id,
            username=actor,
            action_id=action_id,
            context=_email_context(dag_id, run_id, cleaned, new_run_id),
        )
        return ActionResult(
            action_id,
            action.value,
            dag_id,
            run_id,
            actor,
            status.value,
            RunStatus.SKIPPED.value,
            new_run_id=new_run_id,
            outbox_ids=[*(finished or []), outbox_id],
        )

    return _guarded(session, work)


def _finish_pending_stop(session: Session, dag_id: str, run_id: str, record: Any) -> list[int] | None:
    """A run that reads ``stopped`` before the housekeeper's pass: finish its stop (email, work list) first.

    Returns the outbox ids written, ``[]`` when the housekeeper finished it meanwhile, None when there was
    no stop to finish.
    """
    if record is None or record.status != RecordStatus.STOPPING.value:
        return None
    try:
        return _finish_stop(record, session)
    except ConflictError:
        return []


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@provide_session
def restart_run(
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    unpause: bool = False,
    idempotency_key: str | None = None,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Mark a failed or stopped run skipped and queue a new run for the same slot."""
    return _mark_skipped(Action.RESTART, dag_id, run_id, actor, note, idempotency_key, unpause, session)


@provide_session
def skip_run(
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    idempotency_key: str | None = None,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Mark a failed or stopped run skipped; the schedule goes on."""
    return _mark_skipped(Action.SKIP, dag_id, run_id, actor, note, idempotency_key, False, session)


ACTIONS = {Action.STOP: stop_run, Action.RESTART: restart_run, Action.SKIP: skip_run}


# ---------------------------------------------------------------- work list


@provide_session
def worklist(
    username: str | None = None, *, include_resolved: bool = False, session: Session = NEW_SESSION
) -> list[WorklistItem]:
    """Work-list entries of ``username`` (everyone's when None), newest first."""
    query = select(worklist_entry).order_by(worklist_entry.c.created_at.desc(), worklist_entry.c.id.desc())
    if username is not None:
        query = query.where(worklist_entry.c.assignee == username)
    if not include_resolved:
        query = query.where(worklist_entry.c.resolved_at.is_(None))
    return [
        WorklistItem(r.id, r.dag_id, r.run_id, r.assignee, r.reason, r.note, r.created_at, r.resolved_at, r.resolution)
        for r in session.execute(query)
    ]


@provide_session
def reassign(
    dag_id: str, run_id: str, *, to_user: str, actor: str, note: str | None = None, session: Session = NEW_SESSION
) -> WorklistItem:
    """Give a run's open work-list entry to another user."""
    settings = get_settings()
    cleaned = validate_note(note, required=False, max_length=settings.note_max_length)
    _require_user(actor, session)
    _require_user(to_user, session)
    _require_run(dag_id, run_id, session)
    entry = session.execute(
        select(worklist_entry).where(
            worklist_entry.c.dag_id == dag_id,
            worklist_entry.c.run_id == run_id,
            worklist_entry.c.resolved_at.is_(None),
        )
    ).first()
    if entry is None:
        raise NotFoundError(f"Run {run_id!r} of campaign {dag_id!r} is on nobody's work list.")
    result = session.execute(
        update(worklist_entry)
        .where(
            worklist_entry.c.id == entry.id,
            worklist_entry.c.assignee == entry.assignee,
            worklist_entry.c.resolved_at.is_(None),
        )
        .values(assignee=to_user)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        raise ConflictError("The work-list entry changed at the same time; reload and retry.")
    record = _records(dag_id, [run_id], session).get(run_id)
    status = RunStatus(record.status) if record is not None and record.status else RunStatus.STOPPED
    _record_action(
        session,
        dag_id=dag_id,
        run_id=run_id,
        action=Action.REASSIGN,
        actor=actor,
        note=cleaned or f"Reassigned from {entry.assignee} to {to_user}",
        before=status,
        after=status,
    )
    return WorklistItem(entry.id, dag_id, run_id, to_user, entry.reason, entry.note, entry.created_at, None, None)


# ---------------------------------------------------------------- housekeeping


@provide_session
def finish_stopping_runs(*, session: Session = NEW_SESSION) -> list[int]:
    """Move ``stopping`` runs with no running task to ``stopped`` (work list + email); kill overdue ones.

    Returns the outbox ids of the emails written. Safe to run in several processes at once.
    """
    grace = timedelta(seconds=get_settings().stop_grace_seconds)
    records = session.execute(select(run_record).where(run_record.c.status == RecordStatus.STOPPING.value)).all()
    outbox_ids: list[int] = []
    for record in records:
        running = airflow_api.running_task_counts(record.dag_id, [record.run_id], session).get(record.run_id, 0)
        if running:
            requested = record.stop_requested_at or airflow_api.utcnow()
            if airflow_api.utcnow() - requested >= grace:
                airflow_api.force_fail_running(record.dag_id, record.run_id, session)
                session.commit()
            continue
        try:
            outbox_ids.extend(_finish_stop(record, session))
            session.commit()
        except ConflictError:
            session.rollback()
    return outbox_ids


def _finish_stop(record: Any, session: Session) -> list[int]:
    now = airflow_api.utcnow()
    _transition(
        session, record.dag_id, record.run_id, record, {"status": RecordStatus.STOPPED.value, "stopped_at": now}
    )
    stop_action = session.execute(
        select(run_action)
        .where(
            run_action.c.dag_id == record.dag_id,
            run_action.c.run_id == record.run_id,
            run_action.c.action == Action.STOP.value,
        )
        .order_by(run_action.c.id.desc())
        .limit(1)
    ).first()
    actor = record.stop_requested_by or (stop_action.actor if stop_action else "")
    note = stop_action.note if stop_action else ""
    session.execute(
        insert(worklist_entry).values(
            dag_id=record.dag_id,
            run_id=record.run_id,
            assignee=actor,
            reason="stopped",
            note=note,
            action_id=stop_action.id if stop_action else None,
            created_at=now,
        )
    )
    outbox_id = notify.enqueue(
        session,
        kind="stopped",
        dag_id=record.dag_id,
        run_id=record.run_id,
        username=actor,
        action_id=stop_action.id if stop_action else None,
        context=_email_context(record.dag_id, record.run_id, note),
    )
    return [outbox_id]


def housekeeping_pass() -> tuple[list[int], int]:
    """One pass: finish stopping runs, then send due emails. Returns (new outbox ids, emails sent)."""
    with create_session() as session:
        outbox_ids = finish_stopping_runs(session=session)
    with create_session() as session:
        sent = notify.deliver(session)
    return outbox_ids, sent


def deliver_soon(outbox_ids: Sequence[int]) -> threading.Thread | None:
    """Try to send freshly committed emails now, off the request thread; the housekeeper retries."""
    if not outbox_ids:
        return None

    def send() -> None:
        try:
            with create_session() as session:
                notify.deliver(session, list(outbox_ids))
        except Exception:
            log.exception("Immediate delivery of emails %s failed; they will be retried", list(outbox_ids))

    thread = threading.Thread(target=send, name="campaign-runs-email", daemon=True)
    thread.start()
    return thread
