"""Stop, Restart and Skip (core.actions) on a real metadata DB, with a real SMTP server receiving the emails."""

from __future__ import annotations

import pendulum
import pytest
from campaign_runs import core
from campaign_runs.domain import (
    ActionNotAllowedError,
    CampaignPausedError,
    InvalidNoteError,
    NotACampaignError,
    NotFoundError,
)
from campaign_runs.tables import email_outbox, run_action, run_record, worklist_entry
from sqlalchemy import func, select

from tests.campaign_runs.core.helpers import count, dag_run, ti_states
from tests.support.fixtures import part_of

# ------------------------------------------------------------------ restart and skip


def test_restart_marks_skipped_and_queues_a_linked_run(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    result = core.restart_run("cr_campaign", run_id, actor="alice", note="Fixed the template")
    assert result.new_run_id is not None and result.new_run_id.startswith("restart__")
    old = core.get_run("cr_campaign", run_id)
    new = core.get_run("cr_campaign", result.new_run_id)
    assert (old.status, old.replaced_by) == ("skipped", result.new_run_id)
    assert (new.status, new.restart_of, new.triggering_user) == ("queued", run_id, "alice")
    new_dr = dag_run("cr_campaign", result.new_run_id)
    original = dag_run("cr_campaign", run_id)
    assert new_dr.conf["campaign_restart_of"] == run_id
    assert new_dr.conf["campaign_slot"]["logical_date"] == original.logical_date.isoformat()
    assert new_dr.logical_date is None

    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign restarted as {result.new_run_id}"
    assert message["To"] == "alice@example.com"
    [entry] = core.run_history("cr_campaign", run_id)
    assert (entry.action, entry.status_before, entry.status_after, entry.new_run_id) == (
        "restart",
        "failed",
        "skipped",
        result.new_run_id,
    )


def test_restart_of_a_restart_keeps_the_original_run_and_slot(make_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    run_id = make_run("cr_campaign", state="failed")
    first = core.restart_run("cr_campaign", run_id, actor="alice", note="first")
    with create_session() as session:  # the restarted run failed too
        session.execute(update(DagRun).where(DagRun.run_id == first.new_run_id).values(state="failed"))
    second = core.restart_run("cr_campaign", first.new_run_id, actor="alice", note="second")
    conf = dag_run("cr_campaign", second.new_run_id).conf
    assert conf["campaign_restart_of"] == run_id
    assert conf["campaign_slot"] == dag_run("cr_campaign", first.new_run_id).conf["campaign_slot"]
    assert conf["campaign_slot"]["logical_date"] == dag_run("cr_campaign", run_id).logical_date.isoformat()
    middle = core.get_run("cr_campaign", first.new_run_id)
    assert (middle.restart_of, middle.replaced_by) == (run_id, second.new_run_id)


def test_restart_of_a_paused_campaign_is_refused_unless_asked_to_unpause(make_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    with create_session() as session:
        session.get(DagModel, "cr_campaign").is_paused = True
    with pytest.raises(CampaignPausedError, match="is paused"):
        core.restart_run("cr_campaign", run_id, actor="alice", note="go")
    assert core.get_run("cr_campaign", run_id).status == "failed"
    assert count(run_action) == count(run_record) == count(email_outbox) == 0

    result = core.restart_run("cr_campaign", run_id, actor="alice", note="go", unpause=True)
    with create_session() as session:
        assert session.get(DagModel, "cr_campaign").is_paused is False
    assert result.new_run_id


def test_skip_releases_tasks_so_depends_on_past_is_not_blocked(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_depends", state="failed", ti_states={"send_email": "failed"})
    core.skip_run("cr_depends", run_id, actor="bob", note="holiday")
    assert ti_states("cr_depends", run_id) == {"send_email": "skipped"}
    assert core.get_run("cr_depends", run_id).status == "skipped"
    core.housekeeping_pass()
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_depends skipped"

    # The next run's task passes Airflow's own depends_on_past check.
    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.ti_deps.dep_context import DepContext
    from airflow.ti_deps.deps.prev_dagrun_dep import PrevDagrunDep
    from airflow.utils.session import create_session

    next_run = make_run(
        "cr_depends",
        state="running",
        logical_date=pendulum.instance(dag_run("cr_depends", run_id).logical_date).add(days=1),
    )
    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(TaskInstance.run_id == next_run))
        ti.task = DBDagBag().get_latest_version_of_dag("cr_depends", session=session).get_task("send_email")
        statuses = list(PrevDagrunDep().get_dep_statuses(ti, session=session, dep_context=DepContext()))
        assert all(s.passed for s in statuses), [s.reason for s in statuses]


# ------------------------------------------------------------------ bad input changes nothing


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"note": ""}, InvalidNoteError, "A note is required"),
        ({"note": "   "}, InvalidNoteError, "A note is required"),
        ({"note": "x" * 2001}, InvalidNoteError, "2001 characters long; the limit is 2000"),
        ({"note": "a\x00b"}, InvalidNoteError, "NUL"),
        ({"actor": "ghost"}, NotFoundError, "User 'ghost' does not exist"),
        ({"run_id": "no-such-run"}, NotFoundError, "Run 'no-such-run' of campaign 'cr_campaign' does not exist"),
        ({"dag_id": "cr_plain"}, NotACampaignError, "not a campaign"),
        ({"dag_id": "missing"}, NotFoundError, "Campaign 'missing' does not exist"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(make_run, kwargs, error, message) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed", ti_states={"send_email": "failed"})
    call = {"dag_id": "cr_campaign", "run_id": run_id, "actor": "alice", "note": "why", **kwargs}
    with pytest.raises(error, match=message):
        core.skip_run(call.pop("dag_id"), call.pop("run_id"), **call)
    assert core.get_run("cr_campaign", run_id).status == "failed"
    assert ti_states("cr_campaign", run_id)["send_email"] == "failed"
    assert count(run_action) == count(run_record) == count(email_outbox) == count(worklist_entry) == 0


def test_actions_not_allowed_say_which_status_allows_them(make_run) -> None:  # type: ignore[no-untyped-def]
    running = make_run("cr_campaign", state="running")
    with pytest.raises(
        ActionNotAllowedError,
        match="Restart is not allowed for a run that is running; it is allowed when the run is failed, stopped",
    ):
        core.restart_run("cr_campaign", running, actor="alice", note="x")
    done = make_run("cr_campaign", state="success")
    with pytest.raises(ActionNotAllowedError, match="Stop is not allowed for a run that is completed"):
        core.stop_run("cr_campaign", done, actor="alice", note="x")
    assert count(run_action) == 0


def test_note_is_optional_when_configured(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from campaign_runs.settings import get_settings

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__NOTE_REQUIRED", "False")
    get_settings.cache_clear()
    run_id = make_run("cr_campaign", state="failed")
    assert core.skip_run("cr_campaign", run_id, actor="alice", note="").status_after == "skipped"


def test_hostile_and_long_notes_are_kept_whole_and_escaped(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    note = "<script>alert('x')</script> " + "n" * 1500
    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note=note)
    assert core.run_history("cr_campaign", run_id)[0].note == note
    assert dag_run("cr_campaign", run_id).note == note[:999] + "\u2026"  # Airflow keeps 1,000: said, not cut silently
    core.wait_for_deliveries(10)
    message = smtp_server.wait_for(1)[0]
    html = part_of(message, "text/html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert note in part_of(message, "text/plain")  # plain text is never rendered: the note as typed


# ------------------------------------------------------------------ idempotency and concurrency


def test_idempotency_key_replays_the_first_result(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed")
    first = core.restart_run("cr_campaign", run_id, actor="alice", note="go", idempotency_key="k-1")
    again = core.restart_run("cr_campaign", run_id, actor="alice", note="go", idempotency_key="k-1")
    assert (again.replayed, again.new_run_id, again.action_id) == (True, first.new_run_id, first.action_id)
    assert count(run_action) == 1
    assert count(email_outbox) == 1


def test_concurrent_restarts_create_exactly_one_new_run(make_run) -> None:  # type: ignore[no-untyped-def]
    import threading

    from campaign_runs.domain import ConflictError

    run_id = make_run("cr_campaign", state="failed")
    barrier = threading.Barrier(10)
    outcomes: list[object] = []
    lock = threading.Lock()

    def restart(n: int) -> None:
        barrier.wait()
        try:
            outcome: object = core.restart_run("cr_campaign", run_id, actor="alice", note=f"try {n}")
        except Exception as error:
            outcome = error
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=restart, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    wins = [o for o in outcomes if isinstance(o, core.ActionResult)]
    losses = [o for o in outcomes if not isinstance(o, core.ActionResult)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, ConflictError | ActionNotAllowedError) for o in losses), losses

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        restarts = session.scalar(
            select(func.count()).where(DagRun.dag_id == "cr_campaign", DagRun.run_id.like("restart__%"))
        )
    assert restarts == 1
    assert count(run_action) == 1


def test_skip_right_after_a_stop_finishes_the_stop_first(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """A run reads stopped as soon as no task runs; acting before the housekeeper's pass loses nothing."""
    run_id = make_run("cr_campaign", state="queued")
    core.stop_run("cr_campaign", run_id, actor="alice", note="halt")
    assert core.get_run("cr_campaign", run_id).status == "stopped"  # no housekeeping pass yet
    result = core.skip_run("cr_campaign", run_id, actor="bob", note="drop")
    assert len(result.outbox_ids) == 2
    core.wait_for_deliveries(10)
    messages = smtp_server.wait_for(2)
    assert sorted((str(m["Subject"]), str(m["To"])) for m in messages) == [
        (f"[Campaign Runs] Run {run_id} of cr_campaign skipped", "bob@example.com"),
        (f"[Campaign Runs] Run {run_id} of cr_campaign stopped", "alice@example.com"),
    ]
    [entry] = core.worklist("alice", include_resolved=True)
    assert (entry.resolution, entry.resolved_at is not None) == ("skipped", True)
    assert [(h.action, h.status_before, h.status_after) for h in core.run_history("cr_campaign", run_id)] == [
        ("stop", "queued", "stopping"),
        ("skip", "stopped", "skipped"),
    ]
    assert core.housekeeping_pass() == ([], 0)
