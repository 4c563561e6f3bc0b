"""Run now, Pause, Resume and Stop all (core.campaign_actions) on a real metadata DB and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest
from campaign_runs import core
from campaign_runs.core import campaign_actions, definitions
from campaign_runs.core.stops import finish_stopping_runs
from campaign_runs.domain import (
    CampaignActionNotAllowedError,
    CampaignPausedError,
    InvalidNoteError,
    InvalidOptionError,
    NotFoundError,
)
from campaign_runs.tables import campaign_event, email_outbox, run_record, worklist_entry
from sqlalchemy import select

from tests.campaign_runs.core.helpers import count, dag_run, ti_states
from tests.support.fixtures import body_of

DAG = "cr_campaign"


def _dag_model() -> Any:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.get(DagModel, DAG)
        session.expunge(model)
        return model


def _set_dag(**values: Any) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == DAG).values(**values))


@pytest.fixture
def unpaused(airflow_db: None) -> Iterator[None]:
    before = _dag_model()
    _set_dag(is_paused=False)
    yield
    _set_dag(
        is_paused=before.is_paused,
        next_dagrun=before.next_dagrun,
        next_dagrun_data_interval_start=before.next_dagrun_data_interval_start,
        next_dagrun_data_interval_end=before.next_dagrun_data_interval_end,
        next_dagrun_create_after=before.next_dagrun_create_after,
    )


def _missed_since(slot: Any) -> None:
    """The DAG's next run is ``slot``, as the scheduler left it when the campaign was paused."""
    _set_dag(
        next_dagrun=slot,
        next_dagrun_data_interval_start=slot,
        next_dagrun_data_interval_end=slot,
        next_dagrun_create_after=slot,
    )


def _events(kind: str) -> list[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(session.execute(select(campaign_event).where(campaign_event.c.kind == kind)).all())


def test_run_now_starts_a_run_with_validated_overrides_and_emails(unpaused: None, smtp_server: Any) -> None:
    result = campaign_actions.run_now(DAG, actor="alice", note="Launch", conf={"audience_size": 7})

    [run_id] = result.run_ids
    started = dag_run(DAG, run_id)
    assert (started.state, started.conf) == ("queued", {"audience_size": 7})
    assert core.get_run(DAG, run_id).triggering_user == "alice"
    [event] = _events("run_now")
    assert (event.actor, event.note, json.loads(event.details)["run_id"]) == ("alice", "Launch", run_id)
    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run now started a run of {DAG}"
    assert f"Run now started a run of campaign {DAG}, as you asked." in body_of(message)
    assert message["To"] == "alice@example.com"


def test_run_now_refuses_unknown_params_a_paused_campaign_and_a_long_note(unpaused: None) -> None:
    with pytest.raises(InvalidOptionError, match="unknown param"):
        campaign_actions.run_now(DAG, actor="alice", note="x", conf={"audience": 7})
    with pytest.raises(InvalidNoteError):
        campaign_actions.run_now(DAG, actor="alice", note="x" * 5000)
    _set_dag(is_paused=True)
    with pytest.raises(CampaignPausedError):
        campaign_actions.run_now(DAG, actor="alice", note="x")
    with pytest.raises(NotFoundError):
        campaign_actions.run_now("no_such_dag", actor="alice", note="x")
    assert count(campaign_event) == 0 and count(email_outbox) == 0


def test_pause_then_resume_without_missed_runs_moves_the_next_run_past_now(unpaused: None, smtp_server: Any) -> None:
    campaign_actions.pause(DAG, actor="alice", note="Holiday")
    assert _dag_model().is_paused
    with pytest.raises(CampaignActionNotAllowedError, match="already paused"):
        campaign_actions.pause(DAG, actor="alice", note="Again")
    three_weeks_ago = pendulum.now("Europe/Paris").subtract(weeks=3).start_of("week").add(hours=9)
    _missed_since(three_weeks_ago)

    result = campaign_actions.resume(DAG, actor="alice", note="Back", missed="none")

    model = _dag_model()
    assert not model.is_paused and result.backfill_id is None
    assert model.next_dagrun_create_after > pendulum.now("UTC")
    assert [e.kind for e in definitions.history(DAG)] == ["resume", "pause"]
    with pytest.raises(CampaignActionNotAllowedError, match="not paused"):
        campaign_actions.resume(DAG, actor="alice", note="x")


def test_resume_latest_makes_the_last_missed_slot_the_next_run(unpaused: None, smtp_server: Any) -> None:
    campaign_actions.pause(DAG, actor="alice", note="Holiday")
    three_weeks_ago = pendulum.now("Europe/Paris").subtract(weeks=3).start_of("week").add(hours=9)
    _missed_since(three_weeks_ago)

    campaign_actions.resume(DAG, actor="alice", note="Back", missed="latest")

    model = _dag_model()
    now = pendulum.now("UTC")
    assert model.next_dagrun_create_after <= now
    assert model.next_dagrun_create_after > now.subtract(weeks=1)  # the latest Monday 09:00 Paris, not older


def test_resume_all_backfills_every_missed_slot_with_airflow(unpaused: None, smtp_server: Any) -> None:
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.utils.session import create_session

    campaign_actions.pause(DAG, actor="alice", note="Holiday")
    core.wait_for_deliveries(10)
    three_weeks_ago = pendulum.now("Europe/Paris").subtract(weeks=3).start_of("week").add(hours=9)
    _missed_since(three_weeks_ago)

    result = campaign_actions.resume(DAG, actor="alice", note="Catch up", missed="all")

    assert result.backfill_id is not None
    with create_session() as session:
        backfill = session.get(Backfill, result.backfill_id)
        assert backfill.dag_id == DAG and backfill.triggering_user_name == "alice"
        runs = session.scalars(select(BackfillDagRun).where(BackfillDagRun.backfill_id == backfill.id)).all()
        assert len(runs) in (3, 4)  # one per Monday since then (4 when today is past this Monday's 09:00)
        backfill.completed_at = pendulum.now("UTC")  # let other tests backfill again
    assert _dag_model().next_dagrun_create_after > pendulum.now("UTC")
    with pytest.raises(InvalidOptionError):
        campaign_actions.resume(DAG, actor="alice", note="x", missed="some")


def test_stop_all_stops_each_active_run_and_sends_one_email(make_run: Any, unpaused: None, smtp_server: Any) -> None:
    from airflow.utils.session import create_session

    first = make_run(DAG, state="running", ti_states={"build_audience": "running"})
    second = make_run(DAG, state="queued")
    done = make_run(DAG, state="success")

    result = campaign_actions.stop_all(DAG, actor="alice", note="Wrong audience")

    assert sorted(result.run_ids) == sorted([first, second]) and done not in result.outcomes
    ti_states(DAG, first)  # tasks were told to stop
    with create_session() as session:
        quiet = session.execute(select(run_record.c.run_id, run_record.c.stop_email)).all()
    assert sorted(quiet) == sorted([(first, False), (second, False)])
    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Stopping 2 runs of {DAG}"
    assert f"2 runs of campaign {DAG} are stopping, as you asked." in body_of(message)
    assert "(s)" not in body_of(message)  # both parts, plain text and HTML
    assert result.message == f"Stopping 2 runs of {DAG}."
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import update

    with create_session() as session:  # the tasks ended: the housekeeper finishes both stops
        session.execute(update(DagRun).where(DagRun.run_id.in_([first, second])).values(state="failed"))
        session.execute(update(TaskInstance).where(TaskInstance.run_id.in_([first, second])).values(state="failed"))
    finish_stopping_runs()
    assert count(worklist_entry) == 2
    assert [row["kind"] for row in _outbox()] == ["campaign_action"]  # no per-run stop email
    with pytest.raises(CampaignActionNotAllowedError, match="no run to stop"):
        campaign_actions.stop_all(DAG, actor="alice", note="Again")


def _outbox() -> list[dict[str, Any]]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return [dict(row) for row in session.execute(select(email_outbox)).mappings()]


def test_the_dispatcher_refuses_options_an_action_does_not_take(unpaused: None) -> None:
    with pytest.raises(InvalidOptionError, match="conf is an option of run_now"):
        campaign_actions.perform_campaign_action("pause", DAG, actor="alice", note="x", conf={})
    with pytest.raises(InvalidOptionError, match="missed is an option of resume"):
        campaign_actions.perform_campaign_action("pause", DAG, actor="alice", note="x", missed="all")
    with pytest.raises(NotFoundError, match="Unknown campaign action"):
        campaign_actions.perform_campaign_action("explode", DAG, actor="alice", note="x")


def test_restart_keeps_the_runs_conf_and_takes_validated_params_over_it(make_run: Any, smtp_server: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    failed = make_run(DAG, state="failed", ti_states={"build_audience": "success"})
    with create_session() as session:  # the failed run had its own override
        session.execute(update(DagRun).where(DagRun.run_id == failed).values(conf={"audience_size": 5}))
    with pytest.raises(InvalidOptionError, match="params: unknown param"):
        core.restart_run(DAG, failed, actor="alice", note="Fixed", params={"audience": 9})
    assert core.get_run(DAG, failed).status == "failed"

    result = core.restart_run(DAG, failed, actor="alice", note="Fixed", params={"audience_size": 9}, unpause=True)

    conf = dag_run(DAG, result.new_run_id).conf
    assert conf["audience_size"] == 9 and conf["campaign_restart_of"] == failed
    [entry] = [e for e in definitions.history(DAG) if e.kind == "restart"]
    assert json.loads(entry.details or "{}") == {
        "run_id": failed,
        "new_run_id": result.new_run_id,
        "params": {"audience_size": 9},
    }
    failed_again = make_run(DAG, state="failed", ti_states={"build_audience": "success"})
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == failed_again).values(conf={"audience_size": 5}))
    plain = core.restart_run(DAG, failed_again, actor="alice", note="Fixed", unpause=True)
    assert dag_run(DAG, plain.new_run_id).conf["audience_size"] == 5  # the same audience: nobody sent twice


def test_resume_of_a_manual_campaign_only_unpauses_it(unpaused: None, smtp_server: Any) -> None:
    """cr_slow has no schedule: no missed slot, no backfill, whatever the choice."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    campaign_actions.pause("cr_slow", actor="alice", note="Hold")

    result = campaign_actions.resume("cr_slow", actor="alice", note="Go", missed="all")

    with create_session() as session:
        model = session.get(DagModel, "cr_slow")
        assert model is not None and not model.is_paused and model.next_dagrun_create_after is None
    assert result.backfill_id is None


@pytest.fixture
def yaml_campaign(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A definitions folder holding a file named after the campaign: Resume treats it as a YAML campaign."""
    from campaign_runs.settings import get_settings

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__RESUME_WAIT_SECONDS", "0.5")
    get_settings.cache_clear()
    (tmp_path / f"{DAG}.yaml").write_text("id: cr_campaign\n")
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.parametrize("missed", ["none", "latest", "all"])
def test_resume_keeps_a_yaml_campaign_paused_until_airflow_has_loaded_its_instant(
    unpaused: None, yaml_campaign: Any, missed: str
) -> None:
    """No dag-processor here: the instant is written, Resume refuses with the reason, the campaign stays paused."""
    from campaign_runs.factory.schedule_state import read_not_before

    campaign_actions.pause(DAG, actor="alice", note="Holiday")
    slot = pendulum.now("UTC").subtract(hours=3).start_of("hour")
    _missed_since(slot)

    with pytest.raises(CampaignActionNotAllowedError, match="has not loaded 'cr_campaign' with its new schedule"):
        campaign_actions.resume(DAG, actor="alice", note="Back", missed=missed)

    assert _dag_model().is_paused and _dag_model().next_dagrun_create_after == slot
    written = read_not_before(yaml_campaign, DAG)
    assert written is not None and written <= pendulum.now("UTC")
    assert [e.kind for e in definitions.history(DAG)] == ["pause"]


def test_resume_of_a_yaml_campaign_in_a_read_only_folder_says_what_to_commit(
    unpaused: None, yaml_campaign: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_runs.adapters import definitions as files

    campaign_actions.pause(DAG, actor="alice", note="Holiday")
    monkeypatch.setattr(files, "writable", lambda folder: False)

    with pytest.raises(CampaignActionNotAllowedError, match=r"add `not_before: .*` under `schedule:`"):
        campaign_actions.resume(DAG, actor="alice", note="Back", missed="none")

    assert _dag_model().is_paused
    assert not (yaml_campaign / ".campaign-runs").exists()
