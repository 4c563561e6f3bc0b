"""Stop, Restart and Skip: validate, claim the run with a compare-and-set, record, email after commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError, OperationalError

from campaign_runs.adapters import auth, dags, metrics, runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import events, notify, reconcile, records
from campaign_runs.core.delivery import deliver_after_commit
from campaign_runs.core.details import in_doubt_count
from campaign_runs.core.dto import ActionResult
from campaign_runs.core.overrides import check_overrides, check_params
from campaign_runs.core.schedule import current_status, require_run
from campaign_runs.core.served_slot import RESTART_CONF_RUN, RESTART_CONF_SLOT
from campaign_runs.core.stops import finish_pending_stop
from campaign_runs.domain import (
    ALLOWED_FROM,
    RESULT_OF,
    Action,
    ActionNotAllowedError,
    CampaignPausedError,
    ConflictError,
    InvalidOptionError,
    NotFoundError,
    RecordStatus,
    RunStatus,
    UnknownActionError,
    utcnow,
    validate_note,
)
from campaign_runs.factory.keys import RESEND_IN_DOUBT_KEY
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.runs import DagRunInfo

RESTART_CONF_RESEND = RESEND_IN_DOUBT_KEY
RUN_ACTIONS = (Action.STOP, Action.RESTART, Action.SKIP)


@dataclass(frozen=True)
class RestartOptions:
    """Restart's options: unpause the campaign, resend to recipients in doubt, params overrides."""

    unpause: bool = False
    resend_in_doubt: bool = False
    params: dict[str, Any] | None = None


@provide_session
def require_user(username: str, *, session: Session = NEW_SESSION) -> str | None:
    """The user's email address (None when none resolves), or ``NotFoundError`` for a user the auth manager lacks.

    Where the auth manager cannot list users (Keycloak) the name is taken as given.
    """
    found = auth.resolve_email(username, session)
    if not found.known:
        raise NotFoundError(auth.unknown_user_message(username))
    auth.remember_acting_email(username, session)
    return found.address


def _prepare(
    action: Action, dag_id: str, run_id: str, actor: str, note: str | None, session: Session
) -> tuple[str, DagRunInfo, Any, RunStatus]:
    """Validate input and load the run (locked), its record and status; raise before changing anything."""
    settings = get_settings()
    cleaned = validate_note(note, required=settings.note_required, max_length=settings.note_max_length)
    require_user(actor, session=session)
    dag_run = require_run(dag_id, run_id, session, lock=True)
    record = records.record_of(dag_id, run_id, session)
    if reconcile.is_superseded(record, dag_run):  # someone acted in Airflow since: write it down first
        record, outbox_ids = reconcile.adopt(record, dag_run, session)
        deliver_after_commit(session, outbox_ids)
    status = current_status(dag_run, record, session)
    if status not in ALLOWED_FROM[action]:
        raise ActionNotAllowedError(action, status)
    return cleaned, dag_run, record, status


@contextmanager
def _all_or_nothing(session: Session) -> Iterator[None]:
    """Roll back on any error; a lost race (constraint or lock) becomes ``ConflictError``."""
    try:
        yield
        session.flush()
    except (IntegrityError, OperationalError) as error:
        session.rollback()
        raise ConflictError("Another action on this run was taken at the same time; reload and retry.") from error
    except Exception:
        session.rollback()
        raise


@provide_session
def stop_run(
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    idempotency_key: str | None = None,
    email: bool = True,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Stop an active run: it reads ``stopping`` until no task runs, then ``stopped`` (email, work list).

    ``email=False`` (a campaign's Stop all) leaves the email to the caller, which sends one for all its runs.
    """
    require_run(dag_id, run_id, session)  # an unknown run is refused before any other work
    fingerprint = records.request_fingerprint(Action.STOP, dag_id, run_id, note=note)
    if (replayed := records.replay(actor, idempotency_key, fingerprint, session)) is not None:
        return replayed
    cleaned, dag_run, record, status = _prepare(Action.STOP, dag_id, run_id, actor, note, session)
    with _all_or_nothing(session):
        values = {
            "status": RecordStatus.STOPPING.value,
            "stop_requested_by": actor,
            "stop_requested_at": utcnow(),
            "stop_email": email,
            **reconcile.identity(dag_run),
        }
        records.transition(session, dag_id, run_id, record, values)
        runs.halt_run(dag_id, run_id, session)
        runs.set_run_note(dag_id, run_id, cleaned, actor, session)
        action_id = records.record_action(
            session,
            dag_id=dag_id,
            run_id=run_id,
            action=Action.STOP,
            actor=actor,
            note=cleaned,
            before=status,
            after=RESULT_OF[Action.STOP],
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            dag_run=reconcile.identity(dag_run),
        )
    metrics.incr("action.stop")
    return ActionResult(action_id, Action.STOP.value, dag_id, run_id, actor, status.value, RunStatus.STOPPING.value)


def _restart_conf(dag_run: DagRunInfo, resend_in_doubt: bool, params: dict[str, Any] | None) -> dict[str, Any]:
    """The new run's conf: the run's own conf with ``params`` overrides on top, and the restart's links.

    The new run is created from the campaign's current DAG (its current YAML: a fixed template or setting
    applies), keeps what the run was asked to do (its audience, its overrides: the same recipients, so the
    ledger sends nobody twice), and takes ``params`` over it. A restart of a restart keeps the original run
    and slot. ``campaign_resend_in_doubt`` is set only when this restart asks for it, never inherited.
    """
    previous = {k: v for k, v in dag_run.conf.items() if k != RESTART_CONF_RESEND}
    slot = previous.get(RESTART_CONF_SLOT) or {
        "logical_date": _iso(dag_run.logical_date),
        "data_interval_start": _iso(dag_run.data_interval_start),
        "data_interval_end": _iso(dag_run.data_interval_end),
        "run_after": _iso(dag_run.run_after),  # when it was due: the slot of a run without a logical date
    }
    conf = {
        **previous,
        **(params or {}),
        RESTART_CONF_RUN: previous.get(RESTART_CONF_RUN) or dag_run.run_id,
        RESTART_CONF_SLOT: slot,
    }
    return {**conf, RESTART_CONF_RESEND: True} if resend_in_doubt else conf


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _check_not_paused(dag_id: str, unpause: bool, session: Session) -> None:
    dag = dags.get_dag(dag_id, session)
    if dag is not None and dag.is_paused and not unpause:
        raise CampaignPausedError(
            f"Campaign {dag_id!r} is paused, so a restarted run would not start. "
            "Unpause the campaign first, or ask to unpause it with the restart."
        )


def _start_replacement(
    dag_run: DagRunInfo, new_run_id: str, actor: str, note: str, options: RestartOptions, session: Session
) -> None:
    """Unpause the campaign if needed and queue the new run, linked to the one it replaces."""
    dag = dags.get_dag(dag_run.dag_id, session)
    if dag is not None and dag.is_paused:
        dags.set_paused(dag, False)
    conf = _restart_conf(dag_run, options.resend_in_doubt, options.params)
    new_run = runs.trigger_run(dag_run.dag_id, run_id=new_run_id, conf=conf, user=actor, note=note, session=session)
    records.link_restart(session, dag_run.dag_id, new_run_id, dag_run.run_id, reconcile.identity(new_run))


def _mark_skipped(
    action: Action, dag_run: DagRunInfo, record: Any, actor: str, note: str, options: RestartOptions, session: Session
) -> tuple[str | None, list[int]]:
    """Skip the run (finishing a pending stop first); a restart also queues its replacement."""
    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    new_run_id = None
    values: dict[str, Any] = {"status": RecordStatus.SKIPPED.value, **reconcile.identity(dag_run)}
    if action is Action.RESTART:
        new_run_id = f"restart__{utcnow().strftime('%Y%m%dT%H%M%S%f')}__{run_id}"[:250]
        values["replaced_by_run_id"] = new_run_id
    finished = finish_pending_stop(record, session)
    current = records.record_of(dag_id, run_id, session) if finished is not None else record
    records.transition(session, dag_id, run_id, current, values)
    runs.release_tasks(dag_id, run_id, session)
    runs.set_run_note(dag_id, run_id, note, actor, session)
    if new_run_id is not None:
        _start_replacement(dag_run, new_run_id, actor, note, options, session)
    records.resolve_worklist(session, dag_id, run_id, actor, "restarted" if new_run_id else "skipped")
    return new_run_id, finished or []


def _enqueue_email(
    action: Action,
    dag_id: str,
    run_id: str,
    actor: str,
    action_id: int,
    note: str,
    new_run_id: str | None,
    resend_in_doubt: bool,
    session: Session,
) -> int:
    context = notify.action_context(dag_id, run_id, note, new_run_id)
    if action is Action.RESTART:
        context |= {"in_doubt": in_doubt_count(dag_id, run_id, session), "resend_in_doubt": resend_in_doubt}
    return notify.enqueue(
        session,
        kind="restarted" if action is Action.RESTART else "skipped",
        dag_id=dag_id,
        run_id=run_id,
        username=actor,
        action_id=action_id,
        context=context,
    )


def _record_overrides(
    session: Session, dag_id: str, run_id: str, new_run_id: str | None, actor: str, note: str, params: Any
) -> None:
    """The fix path: the campaign's history keeps the params a restart overrode."""
    if params:
        details = {"run_id": run_id, "new_run_id": new_run_id, "params": params}
        events.record_event(session, dag_id=dag_id, kind="restart", actor=actor, note=note, details=json.dumps(details))


def _skip_or_restart(
    action: Action,
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    idempotency_key: str | None,
    options: RestartOptions,
    session: Session,
) -> ActionResult:
    require_run(dag_id, run_id, session)  # an unknown run is refused before the params are even looked at
    check_overrides("params", options.params)
    unpause, resend_in_doubt = options.unpause, options.resend_in_doubt
    extra = {"params": options.params} if options.params else {}
    fingerprint = records.request_fingerprint(
        action, dag_id, run_id, note=note, unpause=unpause, resend_in_doubt=resend_in_doubt, **extra
    )
    if (replayed := records.replay(actor, idempotency_key, fingerprint, session)) is not None:
        return replayed
    cleaned, dag_run, record, status = _prepare(action, dag_id, run_id, actor, note, session)
    if action is Action.RESTART:
        _check_not_paused(dag_id, unpause, session)
        check_params(dag_id, options.params, session)
    with _all_or_nothing(session):
        new_run_id, finished = _mark_skipped(action, dag_run, record, actor, cleaned, options, session)
        action_id = records.record_action(
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
            request_fingerprint=fingerprint,
            dag_run=reconcile.identity(dag_run),
        )
        outbox_id = _enqueue_email(
            action, dag_id, run_id, actor, action_id, cleaned, new_run_id, resend_in_doubt, session
        )
        _record_overrides(session, dag_id, run_id, new_run_id, actor, cleaned, options.params)
    outbox_ids = [*finished, outbox_id]
    deliver_after_commit(session, outbox_ids)
    metrics.incr(f"action.{action.value}")
    after = RunStatus.SKIPPED.value
    return ActionResult(action_id, action.value, dag_id, run_id, actor, status.value, after, new_run_id, outbox_ids)


@provide_session
def restart_run(
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    unpause: bool = False,
    resend_in_doubt: bool = False,
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Mark a failed or stopped run skipped and queue a new run for the same slot; email after commit."""
    return perform(
        Action.RESTART,
        dag_id,
        run_id,
        actor=actor,
        note=note,
        unpause=unpause,
        resend_in_doubt=resend_in_doubt,
        params=params,
        idempotency_key=idempotency_key,
        session=session,
    )


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
    """Mark a failed or stopped run skipped; the schedule goes on; email after commit."""
    return perform(
        Action.SKIP, dag_id, run_id, actor=actor, note=note, idempotency_key=idempotency_key, session=session
    )


def parse_action(name: str) -> Action:
    """The run action called ``name``, or ``UnknownActionError``."""
    for action in RUN_ACTIONS:
        if action.value == name:
            return action
    raise UnknownActionError(f"Unknown action {name!r}; the actions are {', '.join(a.value for a in RUN_ACTIONS)}.")


@provide_session
def perform(
    action: Action | str,
    dag_id: str,
    run_id: str,
    *,
    actor: str,
    note: str | None,
    unpause: bool = False,
    resend_in_doubt: bool = False,
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    session: Session = NEW_SESSION,
) -> ActionResult:
    """Take ``action`` (stop, restart, skip) on a run: the one dispatcher every edge calls.

    ``unpause``, ``resend_in_doubt`` and ``params`` are Restart's options; another action refuses them.
    """
    wanted = parse_action(str(action))
    if wanted is not Action.RESTART and (unpause or resend_in_doubt or params):
        raise InvalidOptionError(f"unpause, resend_in_doubt and params are options of restart, not of {wanted.value}.")
    if wanted is Action.STOP:
        return stop_run(dag_id, run_id, actor=actor, note=note, idempotency_key=idempotency_key, session=session)
    return _skip_or_restart(
        wanted,
        dag_id,
        run_id,
        actor=actor,
        note=note,
        idempotency_key=idempotency_key,
        options=RestartOptions(unpause, resend_in_doubt, params),
        session=session,
    )
