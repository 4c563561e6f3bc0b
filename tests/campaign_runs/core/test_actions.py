"""The core service on a real metadata DB, with a real SMTP server receiving the emails."""

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
from campaign_runs.models import email_outbox, run_action, run_record, worklist_entry
from sqlalchemy import func, select

from tests.support.fixtures import body_of

BASE = "http://airflow.example.com/pluginsv2/campaigns/display"


def count(table) -> int:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def dag_run(dag_id: str, run_id: str):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return SimpleNamespace(
            state=dr.state, note=dr.note, conf=dr.conf, logical_date=dr.logical_date, run_id=dr.run_id
        )


def ti_states(dag_id: str, run_id: str) -> dict[str, str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        )
        return {task_id: (str(state) if state else None) for task_id, state in rows}


def set_ti_state(dag_id: str, run_id: str, task_id: str, state: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
            .values(state=state)
        )


# ------------------------------------------------------------------ reading


def test_list_campaigns_shows_only_tagged_dags(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed")
    campaigns, total = core.list_campaigns(dag_ids=["cr_campaign", "cr_depends", "cr_plain"])
    assert total == 2
    by_id = {c.dag_id: c for c in campaigns}
    assert set(by_id) == {"cr_campaign", "cr_depends"}
    newsletter = by_id["cr_campaign"]
    assert newsletter.owners == ["growth"]
    assert newsletter.owner_emails == ["growth@example.com"]
    assert newsletter.channels == ["email", "sms"]
    assert newsletter.audience == "testers"
    assert newsletter.schedule == "0 9 * * MON"
    assert newsletter.last_run_id == run_id
    assert newsletter.last_status == "failed"
    assert newsletter.active_runs == 0


def test_search_and_sort(airflow_db) -> None:  # type: ignore[no-untyped-def]
    campaigns, total = core.list_campaigns(search="DEPENDS", dag_ids=["cr_campaign", "cr_depends"])
    assert (total, [c.dag_id for c in campaigns]) == (1, ["cr_depends"])
    campaigns, _ = core.list_campaigns(dag_ids=["cr_campaign", "cr_depends"], descending=True)
    assert [c.dag_id for c in campaigns] == ["cr_depends", "cr_campaign"]


def test_unknown_and_non_campaign_dags_are_refused(airflow_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        core.get_campaign("nope")
    with pytest.raises(NotACampaignError, match="not a campaign"):
        core.run_schedule("cr_plain")


def test_campaign_about(airflow_db) -> None:  # type: ignore[no-untyped-def]
    detail = core.get_campaign("cr_campaign")
    assert detail.timezone == "Europe/Paris"
    assert detail.params == {"audience_size": 100}
    assert "testers" in (detail.doc_md or "")
    assert detail.summary.description == "Weekly test newsletter"


def test_upcoming_runs_follow_the_cron_in_its_timezone(airflow_db) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:  # a stale next run, as left when no scheduler ran for weeks
        stale = pendulum.datetime(2026, 1, 5, 8, tz="UTC")
        session.execute(
            update(DagModel)
            .where(DagModel.dag_id == "cr_campaign")
            .values(next_dagrun=stale, next_dagrun_create_after=stale)
        )
    upcoming = core.upcoming_runs("cr_campaign", 3)
    assert len(upcoming) == 3
    assert all(slot.run_after > pendulum.now("UTC") for slot in upcoming)
    for slot in upcoming:
        local = pendulum.instance(slot.run_after).in_timezone("Europe/Paris")
        assert (local.day_of_week, local.hour, local.minute) == (pendulum.MONDAY, 9, 0)
        assert slot.status == "scheduled"
    assert upcoming[1].run_after - upcoming[0].run_after == pendulum.duration(weeks=1)


def test_run_schedule_pages_newest_first_and_hides_skipped(make_run) -> None:  # type: ignore[no-untyped-def]
    run_ids = [make_run("cr_campaign", state="failed") for _ in range(5)]
    first = core.run_schedule("cr_campaign", page=1, page_size=2, upcoming=2)
    assert [r.run_id for r in first.runs] == run_ids[::-1][:2]
    assert (first.total, first.pages, len(first.upcoming)) == (5, 3, 2)
    last = core.run_schedule("cr_campaign", page=3, page_size=2)
    assert [r.run_id for r in last.runs] == [run_ids[0]]
    assert last.upcoming == []

    core.skip_run("cr_campaign", run_ids[4], actor="alice", note="not needed")
    hidden = core.run_schedule("cr_campaign", page_size=10)
    assert run_ids[4] not in [r.run_id for r in hidden.runs]
    shown = core.run_schedule("cr_campaign", page_size=10, include_skipped=True)
    assert {r.run_id: r.status for r in shown.runs}[run_ids[4]] == "skipped"
    failed_only = core.run_schedule("cr_campaign", page_size=10, statuses=["failed"])
    assert [r.run_id for r in failed_only.runs] == run_ids[:4][::-1]


def test_status_follows_airflow_states_and_progress(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    view = core.get_run("cr_campaign", run_id)
    assert (view.status, view.tasks_done, view.tasks_total, view.progress_percent) == ("running", 1, 4, 25)
    assert view.allowed_actions == ["stop"]
    assert core.get_run("cr_campaign", make_run(state="success")).status == "completed"
    assert core.get_run("cr_campaign", make_run(state="queued")).status == "queued"
    failed = core.get_run("cr_campaign", make_run(state="failed"))
    assert (failed.status, failed.allowed_actions) == ("failed", ["restart", "skip"])


# ------------------------------------------------------------------ stop


def test_stop_reads_stopping_until_tasks_end_then_stopped_with_one_email(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    result = core.stop_run("cr_campaign", run_id, actor="alice", note="Wrong audience")
    assert (result.status_before, result.status_after) == ("running", "stopping")
    assert core.get_run("cr_campaign", run_id).status == "stopping"
    assert dag_run("cr_campaign", run_id).state == "failed"
    assert ti_states("cr_campaign", run_id) == {
        "build_audience": "success",
        "send_email": "running",
        "send_sms": "skipped",
        "summarise": "skipped",
    }
    # Still running: no email, nothing on the work list.
    assert core.finish_stopping_runs() == []
    assert core.worklist("alice") == []

    set_ti_state("cr_campaign", run_id, "send_email", "failed")  # the task process ended
    outbox_ids, sent = core.housekeeping_pass()
    assert (len(outbox_ids), sent) == (1, 1)
    assert core.get_run("cr_campaign", run_id).status == "stopped"

    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
    assert message["To"] == "alice@example.com"
    body = body_of(message)
    assert f"Work id: <code>{run_id}</code>" in body
    assert f'href="{BASE}/cr_campaign"' in body
    assert "Wrong audience" in body

    [entry] = core.worklist("alice")
    assert (entry.dag_id, entry.run_id, entry.reason, entry.note) == (
        "cr_campaign",
        run_id,
        "stopped",
        "Wrong audience",
    )
    assert dag_run("cr_campaign", run_id).note == "Wrong audience"

    # A second stop changes nothing and sends nothing.
    with pytest.raises(ActionNotAllowedError, match="allowed when the run is queued, running"):
        core.stop_run("cr_campaign", run_id, actor="alice", note="again")
    assert core.housekeeping_pass() == ([], 0)
    assert len(smtp_server.messages) == 1
    assert count(run_action) == 1


def test_stop_of_a_queued_run_finishes_at_the_next_pass(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="queued")
    core.stop_run("cr_campaign", run_id, actor="bob", note="too early")
    assert core.get_run("cr_campaign", run_id).status == "stopped"
    core.housekeeping_pass()
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "bob@example.com"


def test_overdue_stopping_run_is_killed_by_airflows_mark_failed(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__STOP_GRACE_SECONDS", "0")
    from campaign_runs.settings import get_settings

    get_settings.cache_clear()
    run_id = make_run("cr_campaign", state="running", ti_states={"send_email": "running"})
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()  # grace over: Airflow fails the running task
    assert ti_states("cr_campaign", run_id)["send_email"] == "failed"
    core.finish_stopping_runs()
    assert core.get_run("cr_campaign", run_id).status == "stopped"


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


def test_skip_resolves_the_work_list_entry(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running")
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()
    assert [e.run_id for e in core.worklist("alice")] == [run_id]
    core.skip_run("cr_campaign", run_id, actor="alice", note="drop it")
    assert core.worklist("alice") == []
    [resolved] = core.worklist("alice", include_resolved=True)
    assert (resolved.resolution, resolved.resolved_at is not None) == ("skipped", True)


def test_reassign_moves_the_entry(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running")
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()
    core.reassign("cr_campaign", run_id, to_user="bob", actor="admin")
    assert core.worklist("alice") == []
    assert [e.run_id for e in core.worklist("bob")] == [run_id]
    with pytest.raises(NotFoundError, match="'ghost' does not exist"):
        core.reassign("cr_campaign", run_id, to_user="ghost", actor="admin")


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
    assert dag_run("cr_campaign", run_id).note == note[:1000]
    core.wait_for_deliveries(10)
    body = body_of(smtp_server.wait_for(1)[0])
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body


# ------------------------------------------------------------------ email delivery


def test_email_waits_while_smtp_is_down_and_is_delivered_once_later(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.support.airflow_env import free_port
    from tests.support.fixtures import start_smtp

    port = free_port()
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(port))  # nothing listens there yet
    run_id = make_run("cr_campaign", state="failed")
    result = core.skip_run("cr_campaign", run_id, actor="alice", note="later")
    assert result.status_after == "skipped"
    core.wait_for_deliveries(10)

    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(select(email_outbox)).one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Connection refused" in row.last_error
    assert row.next_attempt_at > row.created_at

    controller, sink = start_smtp(port)
    try:
        with create_session() as session:  # make it due now instead of waiting out the backoff
            session.execute(email_outbox.update().values(next_attempt_at=row.created_at))
        assert core.housekeeping_pass() == ([], 1)
        assert core.housekeeping_pass() == ([], 0)
        [message] = sink.wait_for(1)
        assert message["Message-ID"] == row.message_id
    finally:
        controller.stop()
    with create_session() as session:
        assert session.execute(select(email_outbox.c.status)).scalar_one() == "sent"


def test_user_without_email_still_acts_and_the_outbox_says_why(make_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    run_id = make_run("cr_campaign", state="failed")
    assert core.skip_run("cr_campaign", run_id, actor="nomail", note="no mail").status_after == "skipped"
    with create_session() as session:
        row = session.execute(select(email_outbox)).one()
    assert (row.status, row.recipient, row.last_error) == (
        "undeliverable",
        None,
        "User 'nomail' has no email address.",
    )


def test_backoff_grows_and_is_capped() -> None:
    from campaign_runs.core.notify import backoff_seconds

    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(30) == 600


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
