"""The campaign's own actions: Run now, Pause, Resume (missed slots: all, latest or none) and Stop all.

Each takes a note, is kept in the campaign's history (``campaign_event``) and emails the user who took it.
Resume maps its choice onto Airflow: ``none`` moves the DAG's next run past now; ``latest`` makes the last
missed slot the next run, so the scheduler creates it at once; ``all`` starts Airflow's own backfill of the
missed slots (``reprocess_behavior=none``) and moves the next scheduled run past now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from campaign_runs import urls
from campaign_runs.adapters import campaign_control as control
from campaign_runs.adapters import dags, metrics, runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import not_before, notify
from campaign_runs.core.actions import require_user, stop_run
from campaign_runs.core.campaigns import require_campaign
from campaign_runs.core.delivery import deliver_after_commit
from campaign_runs.core.events import record_event
from campaign_runs.core.overrides import check_overrides
from campaign_runs.domain import (
    CampaignActionNotAllowedError,
    CampaignPausedError,
    CampaignRunsError,
    InvalidOptionError,
    NotFoundError,
    plural,
    utcnow,
    validate_note,
)
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.dags import DagInfo

CAMPAIGN_ACTIONS = ("run_now", "pause", "resume", "stop_all")
MISSED_CHOICES = ("all", "latest", "none")


@dataclass(frozen=True)
class CampaignActionResult:
    """What a campaign action did: the runs it started or stopped, and each run's outcome."""

    event_id: int
    action: str
    dag_id: str
    actor: str
    message: str
    run_ids: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    outbox_ids: list[int] = field(default_factory=list)
    backfill_id: int | None = None


def _prepare(dag_id: str, actor: str, note: str | None, session: Session) -> tuple[str, DagInfo]:
    settings = get_settings()
    cleaned = validate_note(note, required=settings.note_required, max_length=settings.note_max_length)
    require_user(actor, session=session)
    return cleaned, require_campaign(dag_id, session)


def _record_and_email(
    session: Session,
    *,
    action: str,
    dag_id: str,
    actor: str,
    note: str,
    summary: tuple[str, str],
    details: dict[str, Any],
    runs_listed: list[tuple[str, str]],
) -> tuple[int, int]:
    """History entry and the action's one email, in the caller's transaction; ``summary``: (subject, sentence)."""
    event_id, _ = record_event(
        session, dag_id=dag_id, kind=action, actor=actor, note=note, details=json.dumps(details, default=str)
    )
    base = get_settings().base_url
    context = {
        "summary": summary[0],
        "sentence": summary[1],
        "note": note,
        "campaign_url": urls.absolute(base, urls.campaign_tab_path(dag_id)),
        "runs": [
            {"run_id": run_id, "outcome": outcome, "url": urls.absolute(base, urls.run_tab_path(dag_id, run_id))}
            for run_id, outcome in runs_listed
        ],
        "stopped_runs": action == "stop_all",
        "new_run_id": "",
    }
    run_id = runs_listed[0][0] if runs_listed else ""
    outbox_id = notify.enqueue(
        session, kind="campaign_action", dag_id=dag_id, run_id=run_id, username=actor, action_id=None, context=context
    )
    deliver_after_commit(session, [outbox_id])
    metrics.incr(f"campaign_action.{action}")
    return event_id, outbox_id


@provide_session
def run_now(
    dag_id: str,
    *,
    actor: str,
    note: str | None,
    conf: dict[str, Any] | None = None,
    session: Session = NEW_SESSION,
) -> CampaignActionResult:
    """Start a run now; ``conf`` overrides params, validated against the DAG's params first."""
    check_overrides("conf", conf)
    cleaned, dag = _prepare(dag_id, actor, note, session)
    if dag.is_paused:
        raise CampaignPausedError(f"Campaign {dag_id!r} is paused, so a new run would not start: resume it first.")
    definition = dags.get_definition(dag_id, session)
    if definition is None:
        raise NotFoundError(f"Airflow has not loaded campaign {dag_id!r} yet; try again once it has.")
    overrides = dict(conf or {})
    try:
        control.validated_conf(definition, overrides)
    except ValueError as error:
        raise InvalidOptionError(f"conf: {error}") from error
    run_id = f"manual__{utcnow().isoformat()}"
    runs.trigger_run(dag_id, run_id=run_id, conf=overrides, user=actor, note=cleaned, session=session)
    event_id, outbox_id = _record_and_email(
        session,
        action="run_now",
        dag_id=dag_id,
        actor=actor,
        note=cleaned,
        summary=(f"Run now started a run of {dag_id}", f"Run now started a run of campaign {dag_id}, as you asked."),
        details={"run_id": run_id, "conf": overrides},
        runs_listed=[(run_id, "queued")],
    )
    message = f"Started run {run_id}."
    return CampaignActionResult(event_id, "run_now", dag_id, actor, message, [run_id], {run_id: "queued"}, [outbox_id])


@provide_session
def pause(dag_id: str, *, actor: str, note: str | None, session: Session = NEW_SESSION) -> CampaignActionResult:
    """Pause the campaign: the scheduler creates no new run until Resume (runs already going go on)."""
    cleaned, dag = _prepare(dag_id, actor, note, session)
    if dag.is_paused:
        raise CampaignActionNotAllowedError(f"Campaign {dag_id!r} is already paused.")
    dags.set_paused(dag, True)
    event_id, outbox_id = _record_and_email(
        session,
        action="pause",
        dag_id=dag_id,
        actor=actor,
        note=cleaned,
        summary=(
            f"Paused {dag_id}",
            f"Campaign {dag_id} is paused, as you asked: no new run starts until it is resumed.",
        ),
        details={},
        runs_listed=[],
    )
    return CampaignActionResult(event_id, "pause", dag_id, actor, f"Paused {dag_id}.", outbox_ids=[outbox_id])


def _plan_resume(dag: DagInfo, missed: str, session: Session) -> tuple[DagInfo, list[Any]]:
    """Set the DAG's next run for ``missed``; return the DAG and the slots a backfill must create (``all``).

    A YAML campaign gets a "not before" instant for its timetable (``not_before``), and Resume waits until
    Airflow has loaded it, so no parse can bring a missed slot back; a campaign written in Python keeps Airflow's
    own rules, with its next run set once in ``DagModel``.
    """
    definition = dags.get_definition(dag.dag_id, session)
    if definition is None or definition.dag.timetable.summary in ("None", "", None):
        return dag, []
    due, following = control.slots_due(definition, dag, utcnow(), session)
    found = not_before.campaign_file(dag.dag_id)
    if found is None:
        control.set_next_slot(dag, due[-1] if missed == "latest" and due else following)
        return dag, due if missed == "all" else []
    instant = due[-1].run_after if missed == "latest" and due else utcnow()
    not_before.write(found, dag.dag_id, instant)
    session.commit()  # nothing is held while the dag-processor parses (SQLite: a reader would block its commit)
    not_before.wait_until_loaded(dag.dag_id, instant)
    dag = _prepare_again(dag.dag_id, session)
    control.refresh_next_run(dag, session)
    return dag, due if missed == "all" else []


def _prepare_again(dag_id: str, session: Session) -> DagInfo:
    dag = dags.get_dag(dag_id, session)
    if dag is None or not dag.is_paused:
        raise CampaignActionNotAllowedError(f"Campaign {dag_id!r} changed while it was being resumed; look again.")
    return dag


@provide_session
def resume(
    dag_id: str, *, actor: str, note: str | None, missed: str = "none", session: Session = NEW_SESSION
) -> CampaignActionResult:
    """Unpause the campaign; ``missed`` says which slots missed while paused run: all, latest or none."""
    if missed not in MISSED_CHOICES:
        raise InvalidOptionError(f"missed must be one of {', '.join(MISSED_CHOICES)}, not {missed!r}.")
    cleaned, dag = _prepare(dag_id, actor, note, session)
    if not dag.is_paused:
        raise CampaignActionNotAllowedError(f"Campaign {dag_id!r} is not paused.")
    dag, backfill_slots = _plan_resume(dag, missed, session)
    dags.set_paused(dag, False)
    backfill_id = None
    if backfill_slots:  # Airflow's backfill writes in its own transaction: the unpause must be committed first
        session.commit()
        backfill_id = control.backfill(dag_id, backfill_slots, actor, max_active_runs=1)
    dates = [slot.logical_date.isoformat() for slot in backfill_slots if slot.logical_date is not None]
    event_id, outbox_id = _record_and_email(
        session,
        action="resume",
        dag_id=dag_id,
        actor=actor,
        note=cleaned,
        summary=(f"Resumed {dag_id}", f"Campaign {dag_id} is resumed, as you asked; {_missed_text(missed, dates)}"),
        details={"missed": missed, "backfill_id": backfill_id, "backfill": dates},
        runs_listed=[],
    )
    message = f"Resumed {dag_id}; {_missed_text(missed, dates)}"
    return CampaignActionResult(
        event_id, "resume", dag_id, actor, message, outbox_ids=[outbox_id], backfill_id=backfill_id
    )


def _missed_text(missed: str, backfill: list[str]) -> str:
    """What Resume did with the slots missed while the campaign was paused, as a sentence's end."""
    if missed == "all":
        if not backfill:
            return "no slot was missed while it was paused."
        return f"a backfill runs the {plural(len(backfill), 'slot')} missed while it was paused."
    if missed == "latest":
        return "the latest slot missed while it was paused (if one was) runs now."
    return "slots missed while it was paused do not run."


def _stopping_text(dag_id: str, outcomes: dict[str, str]) -> str:
    """Stop all's sentence: how many runs are stopping, and how many could not be stopped."""
    stopping = sum(1 for outcome in outcomes.values() if outcome == "stopping")
    text = f"{plural(stopping, 'run')} of campaign {dag_id} {'is' if stopping == 1 else 'are'} stopping, as you asked."
    if left := len(outcomes) - stopping:
        text += f" {plural(left, 'run')} could not be stopped (see below)."
    return text


@provide_session
def stop_all(dag_id: str, *, actor: str, note: str | None, session: Session = NEW_SESSION) -> CampaignActionResult:
    """Stop every active run with one note; each follows the Stop rules; one email lists them all."""
    cleaned, _ = _prepare(dag_id, actor, note, session)
    outcomes: dict[str, str] = {}
    for run_id in control.active_run_ids(dag_id, session):
        try:
            stop_run(dag_id, run_id, actor=actor, note=cleaned, email=False, session=session)
            session.commit()
            outcomes[run_id] = "stopping"
        except CampaignRunsError as error:  # already stopping, or changed meanwhile: say so, go on
            session.rollback()
            outcomes[run_id] = f"not stopped: {error}"
    stopped = [run_id for run_id, outcome in outcomes.items() if outcome == "stopping"]
    if not stopped:
        why = "; ".join(f"{run_id} {outcome}" for run_id, outcome in outcomes.items()) or "no run is queued or running"
        raise CampaignActionNotAllowedError(f"Campaign {dag_id!r} has no run to stop: {why}.")
    event_id, outbox_id = _record_and_email(
        session,
        action="stop_all",
        dag_id=dag_id,
        actor=actor,
        note=cleaned,
        summary=(f"Stopping {plural(len(stopped), 'run')} of {dag_id}", _stopping_text(dag_id, outcomes)),
        details={"outcomes": outcomes},
        runs_listed=list(outcomes.items()),
    )
    message = f"Stopping {plural(len(stopped), 'run')} of {dag_id}."
    return CampaignActionResult(event_id, "stop_all", dag_id, actor, message, stopped, outcomes, [outbox_id])


@provide_session
def perform_campaign_action(
    action: str,
    dag_id: str,
    *,
    actor: str,
    note: str | None,
    conf: dict[str, Any] | None = None,
    missed: str | None = None,
    session: Session = NEW_SESSION,
) -> CampaignActionResult:
    """The one dispatcher every edge calls; options another action does not take are refused."""
    if action not in CAMPAIGN_ACTIONS:
        raise NotFoundError(f"Unknown campaign action {action!r}; the actions are {', '.join(CAMPAIGN_ACTIONS)}.")
    if conf is not None and action != "run_now":
        raise InvalidOptionError(f"conf is an option of run_now, not of {action}.")
    if missed is not None and action != "resume":
        raise InvalidOptionError(f"missed is an option of resume, not of {action}.")
    if action == "run_now":
        return run_now(dag_id, actor=actor, note=note, conf=conf, session=session)
    if action == "pause":
        return pause(dag_id, actor=actor, note=note, session=session)
    if action == "resume":
        return resume(dag_id, actor=actor, note=note, missed=missed or "none", session=session)
    return stop_all(dag_id, actor=actor, note=note, session=session)
