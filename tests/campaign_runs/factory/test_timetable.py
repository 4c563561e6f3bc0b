"""The campaign timetable: Airflow's cron trigger timetable that runs no slot before its "not before" instant."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.trigger import CronTriggerTimetable
from campaign_runs.factory.factory import _skip_unscheduled_slot, frozen_channel
from campaign_runs.factory.schedule_state import ScheduleStateError, read_not_before, state_path, state_text
from campaign_runs.factory.spec import load_spec
from campaign_runs.factory.timetable import CampaignTimetable

from tests.dags.conftest import CAMPAIGNS

HOURLY = "0 * * * *"


def hour(offset: int) -> pendulum.DateTime:
    """The hourly slot ``offset`` hours from the latest past one."""
    now = pendulum.now("UTC")
    return now.start_of("hour").add(hours=offset)


def interval(at: pendulum.DateTime) -> DataInterval:
    return DataInterval(at, at)


def scheduler(catchup: bool) -> TimeRestriction:
    """The scheduler's restriction for a campaign: its start_date, no end_date."""
    return TimeRestriction(pendulum.datetime(2025, 1, 1, tz="UTC"), None, catchup)


@pytest.mark.parametrize("catchup", [False, True])
def test_resume_none_runs_no_missed_slot(catchup: bool) -> None:
    """Paused three hours ago, resumed now: the next run is the next slot, for catchup on and off."""
    table = CampaignTimetable(HOURLY, timezone="UTC", not_before=pendulum.now("UTC"))
    plain = CronTriggerTimetable(HOURLY, timezone="UTC")
    last = interval(hour(-3))

    info = table.next_dagrun_info(last_automated_data_interval=last, restriction=scheduler(catchup))
    airflow = plain.next_dagrun_info(last_automated_data_interval=last, restriction=scheduler(catchup))

    assert info is not None and info.run_after == hour(1)
    assert airflow is not None and airflow.run_after == (hour(-2) if catchup else hour(0))  # what Airflow alone does


@pytest.mark.parametrize("catchup", [False, True])
def test_resume_latest_runs_exactly_the_last_missed_slot(catchup: bool) -> None:
    table = CampaignTimetable(HOURLY, timezone="UTC", not_before=hour(0))
    info = table.next_dagrun_info(last_automated_data_interval=interval(hour(-3)), restriction=scheduler(catchup))
    assert info is not None and info.run_after == hour(0)
    after = table.next_dagrun_info(last_automated_data_interval=interval(hour(0)), restriction=scheduler(catchup))
    assert after is not None and after.run_after == hour(1)


def test_a_new_campaign_never_runs_a_slot_before_its_creation() -> None:
    """Created now with a past start_date: the first run is the next slot, not the one an hour ago."""
    table = CampaignTimetable(HOURLY, timezone="UTC", not_before=pendulum.now("UTC"))
    info = table.next_dagrun_info(last_automated_data_interval=None, restriction=scheduler(False))
    assert info is not None and info.run_after == hour(1)


def test_without_not_before_a_first_run_is_never_a_long_passed_slot() -> None:
    """A file written by hand: Airflow would run January's yearly slot at once; the campaign waits for the next."""
    yearly = "0 0 1 1 *"
    next_january = pendulum.datetime(pendulum.now("UTC").year + 1, 1, 1, tz="UTC")
    table = CampaignTimetable(yearly, timezone="UTC")
    airflow = CronTriggerTimetable(yearly, timezone="UTC").next_dagrun_info(
        last_automated_data_interval=None, restriction=scheduler(False)
    )
    info = table.next_dagrun_info(last_automated_data_interval=None, restriction=scheduler(False))
    assert airflow is not None and airflow.run_after < pendulum.now("UTC")
    assert info is not None and info.run_after == next_january


def test_a_range_someone_asked_for_is_answered_as_airflow_does() -> None:
    """A backfill (Resume all) passes a latest bound: every missed slot, whatever not_before says."""
    table = CampaignTimetable(HOURLY, timezone="UTC", not_before=pendulum.now("UTC"))
    backfill = TimeRestriction(hour(-3), hour(-1), catchup=True)
    slots, info = [], None
    while (info := table.next_dagrun_info_v2(last_dagrun_info=info, restriction=backfill)) is not None:
        slots.append(info.run_after)
    assert slots == [hour(-3), hour(-2), hour(-1)]


def test_allows_only_aligned_slots_at_or_after_not_before() -> None:
    table = CampaignTimetable(HOURLY, timezone="UTC", not_before=hour(0))
    assert table.allows(hour(0)) and table.allows(hour(2))
    assert not table.allows(hour(-1))  # before not_before
    assert not table.allows(hour(1).add(minutes=30))  # not a slot of this cron (an old cron's)


def test_the_serialized_dag_keeps_not_before() -> None:
    """The dag-processor serializes the timetable with its instant, and the scheduler reads it back."""
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    moment = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    dag = DAG("cr_timetable_roundtrip", schedule=CampaignTimetable(HOURLY, timezone="Europe/Paris", not_before=moment))
    data = DagSerialization.to_dict(dag)
    assert data["dag"]["timetable"]["__var"]["not_before"] == "2026-03-28T23:30:00+00:00"
    table = DagSerialization.from_dict(data).timetable
    assert isinstance(table, CampaignTimetable) and table == dag.timetable
    assert table.not_before == moment


def test_the_loader_reads_the_state_file_beside_the_campaign(tmp_path: Path) -> None:
    from campaign_runs.factory.loader import load_campaigns

    (tmp_path / "weekly_newsletter.yaml").write_text((CAMPAIGNS / "weekly_newsletter.yaml").read_text())
    moment = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    state_path(tmp_path, "weekly_newsletter").parent.mkdir()
    state_path(tmp_path, "weekly_newsletter").write_text(state_text(moment))
    namespace: dict[str, object] = {}

    assert load_campaigns(tmp_path, namespace) == {}
    assert namespace["campaign__weekly_newsletter"].timetable.not_before == moment  # type: ignore[attr-defined]


@pytest.mark.parametrize("content", ['{"not_before": "2026-12-07T10:00:00"}', '{"not_before": 5}', "[", "x" * 5000])
def test_a_bad_state_file_keeps_the_campaign_out_rather_than_guessing(tmp_path: Path, content: str) -> None:
    state_path(tmp_path, "c").parent.mkdir()
    state_path(tmp_path, "c").write_text(content)
    with pytest.raises(ScheduleStateError):
        read_not_before(tmp_path, "c")


def test_a_scheduled_run_for_a_slot_the_schedule_no_longer_holds_sends_nothing() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    spec = load_spec(CAMPAIGNS / "weekly_newsletter.yaml")  # Mondays 09:00 Paris
    monday = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    spec = dataclasses.replace(spec, schedule=dataclasses.replace(spec.schedule, not_before=monday))

    def run(run_type: str, at: dt.datetime) -> SimpleNamespace:
        return SimpleNamespace(run_type=run_type, run_after=at, run_id=f"{run_type}__x")

    _skip_unscheduled_slot(spec, run("scheduled", monday))
    _skip_unscheduled_slot(spec, run("manual", monday - dt.timedelta(days=7)))  # asked for: Run now, Restart
    _skip_unscheduled_slot(spec, run("backfill", monday - dt.timedelta(days=7)))
    with pytest.raises(AirflowSkipException, match="nothing is sent"):
        _skip_unscheduled_slot(spec, run("scheduled", monday - dt.timedelta(days=7)))  # before not_before
    with pytest.raises(AirflowSkipException, match="nothing is sent"):
        _skip_unscheduled_slot(spec, run("scheduled", monday + dt.timedelta(hours=1)))  # not a Monday 09:00


def test_a_running_run_keeps_the_channel_settings_it_started_with() -> None:
    spec = load_spec(CAMPAIGNS / "weekly_newsletter.yaml")
    started = dataclasses.asdict(spec.channel("email")) | {"batch_size": 7, "settings": {"subject": "Old", "body": "B"}}
    assert frozen_channel(spec, "email", {"channels": {"email": started}}).settings["subject"] == "Old"
    assert frozen_channel(spec, "email", {"channels": {"email": started}}).batch_size == 7
    assert frozen_channel(spec, "email", {}) == spec.channel("email")  # a run started before this release
