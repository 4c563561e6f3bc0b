"""The guard's Stop (core.guard): a tripped channel's run is stopped once, as the owner, with the note and email."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.adapters import auth, metrics, tasks
from campaign_runs.adapters.tasks import GuardTrip
from campaign_runs.core import guard
from campaign_runs.tables import run_action
from sqlalchemy import event, func, select

from tests.campaign_runs.core.helpers import dag_run
from tests.campaign_runs.core.test_housekeeping import set_ti_state
from tests.support.fixtures import body_of

NOTE = "Guard: email failed 12 of 200 (6.0%) in the last batch, over 5%"


def trip_value(note: str = NOTE) -> dict[str, Any]:
    """What a tripped email channel publishes."""
    return {
        "channel": "email",
        "rule": "max_failed_percent",
        "threshold": {"max_failed_percent": 5.0},
        "batch_failed": 12,
        "batch_attempted": 200,
        "note": note,
    }


def push_guard(run_id: str, value: Any = None, dag_id: str = "cr_campaign", task_id: str = "send_email") -> None:
    """Publish XCom ``campaign_guard`` as the tripped channel task does."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(
            "campaign_guard", value or trip_value(), dag_id=dag_id, task_id=task_id, run_id=run_id, session=session
        )


def stops(dag_id: str, run_id: str) -> list[tuple[str, str]]:
    """(actor, note) of every Stop in the run's history."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(run_action.c.actor, run_action.c.note).where(
                run_action.c.dag_id == dag_id, run_action.c.run_id == run_id, run_action.c.action == "stop"
            )
        )
        return [(actor, note) for actor, note in rows]


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the counters the core sends through Airflow's metrics."""
    names: list[str] = []
    monkeypatch.setattr(metrics, "incr", lambda name, count=1: names.append(name))
    return names


def test_a_tripped_guard_stops_the_run_once_as_the_owner_who_gets_the_work_and_the_email(
    make_run: Any, smtp_server: Any, counters: list[str]
) -> None:
    """The Stop is the plugin's (history, run note, work list, email), by the owner, with the note; only once."""
    run_id = make_run("cr_campaign", ti_states={"build_audience": "success", "send_email": "running"})
    push_guard(run_id)

    [result] = guard.stop_tripped_runs()
    assert (result.actor, result.status_before, result.status_after) == ("growth", "running", "stopping")
    assert stops("cr_campaign", run_id) == [("growth", NOTE)]
    assert dag_run("cr_campaign", run_id).note == NOTE
    assert counters == ["action.stop", "guard.stop"]
    assert guard.stop_tripped_runs() == []  # the next pass, or another process's, finds nothing to stop

    set_ti_state("cr_campaign", run_id, "send_email", "failed")  # the held task saw the Stop and ended
    core.housekeeping_pass()
    core.housekeeping_pass()
    assert core.get_run("cr_campaign", run_id).status == "stopped"
    assert stops("cr_campaign", run_id) == [("growth", NOTE)]
    [entry] = core.worklist("growth")
    assert (entry.run_id, entry.note) == (run_id, NOTE)
    [message] = smtp_server.wait_for(1)
    # "growth" is no Airflow user: the email goes to the campaign's owner_email (its mailto: owner link).
    assert message["To"] == "growth@example.com"
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
    assert NOTE in body_of(message)


def test_no_stop_for_runs_that_are_not_running_or_were_stopped_since_the_trip(make_run: Any) -> None:
    """A finished run is left alone, and so is one a Stop followed after the trip (even once running again)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    failed = make_run("cr_campaign", state="failed")
    push_guard(failed)
    stopped = make_run("cr_campaign", ti_states={"send_email": "running"})
    push_guard(stopped)
    core.stop_run("cr_campaign", stopped, actor="alice", note="Stopped by hand")
    with create_session() as session:  # cleared in Airflow: running again, the guard's XCom still there
        session.execute(update(DagRun).where(DagRun.run_id == stopped).values(state="running"))
    assert guard.stop_tripped_runs() == []
    assert stops("cr_campaign", stopped) == [("alice", "Stopped by hand")]


def test_finding_tripped_guards_is_one_query_however_many_runs(make_run: Any) -> None:
    """One statement, with 1 or 6 tripped runs; each found with its owner and owner link."""
    from airflow import settings
    from airflow.utils.session import create_session

    def found() -> tuple[int, list[GuardTrip]]:
        statements: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        with create_session() as session:
            event.listen(settings.engine, "before_cursor_execute", record)
            try:
                trips = tasks.tripped_guards(session)
            finally:
                event.remove(settings.engine, "before_cursor_execute", record)
        return len(statements), trips

    push_guard(make_run("cr_campaign", ti_states={"send_email": "running"}))
    one, trips = found()
    assert [(t.owners, t.owner_link, t.value["note"]) for t in trips] == [("growth", "mailto:growth@example.com", NOTE)]
    for _ in range(5):
        push_guard(make_run("cr_campaign", ti_states={"send_email": "running"}))
    six, trips = found()
    assert (one, six, len(trips)) == (1, 1, 6)


def test_a_known_user_keeps_their_address_anyone_else_gets_the_campaigns(airflow_db: None) -> None:
    """alice (FAB, with an address) keeps hers; a team name and a user without an address get owner_email."""
    from airflow.utils.session import create_session

    with create_session() as session:
        for name in ("alice", "growth", "nomail"):
            guard.reach_owner(name, "team@example.com", session)
        guard.reach_owner("bob", None, session)
        assert [auth.resolve_email(name, session).address for name in ("alice", "growth", "nomail", "bob")] == [
            "alice@example.com",
            "team@example.com",
            "team@example.com",
            "bob@example.com",
        ]


@pytest.mark.parametrize(
    ("owners", "link", "expected"),
    [
        ("growth", "mailto:growth@example.com", ("growth", "growth@example.com")),
        ("growth, ops", "MAILTO:growth@example.com?subject=x", ("growth", "growth@example.com")),
        ("growth", "https://wiki.example.com/growth", ("growth", None)),
        ("", None, ("airflow", None)),
    ],
)
def test_owner_and_address_come_from_the_dag(owners: str, link: str | None, expected: tuple[str, Any]) -> None:
    """The DAG's first owner, and the address of its mailto: owner link."""
    trip = GuardTrip("d", "r", "send_email", -1, dt.datetime.now(dt.UTC), {}, owners, link)
    assert guard.owner_of(trip) == expected


def test_a_trip_without_a_note_gets_one_and_long_notes_are_cut(airflow_db: None) -> None:
    """The note names the channel when the task wrote none; the key differs per trip."""
    now = dt.datetime.now(dt.UTC)
    bare = GuardTrip("d", "r", "send_sms", -1, now, {}, "growth", None)
    assert guard.note_of(bare) == "Guard: sms crossed its failure threshold"
    long = GuardTrip("d", "r", "send_sms", -1, now, {"note": "x" * 50_000}, "growth", None)
    assert 0 < len(guard.note_of(long)) < 50_000
    later = GuardTrip("d", "r", "send_sms", -1, now + dt.timedelta(seconds=1), {}, "growth", None)
    assert guard.idempotency_key(bare) != guard.idempotency_key(later)
    assert len(guard.idempotency_key(bare)) <= 256


def test_counts_of_stop_actions_stay_one_across_passes(make_run: Any, counters: list[str]) -> None:
    """Three passes over one trip: one Stop in the history, one ``action.stop``."""
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", ti_states={"send_email": "running"})
    push_guard(run_id)
    for _ in range(3):
        core.housekeeping_pass()
    with create_session() as session:
        total = session.scalar(select(func.count()).select_from(run_action).where(run_action.c.run_id == run_id))
    assert (total, counters.count("action.stop"), counters.count("guard.stop")) == (1, 1, 1)
