"""Schedules: presets, validation, timetables and plain-words descriptions."""

from __future__ import annotations

import pytest
from campaign_runs.factory.schedule import describe_schedule, is_manual, timetable, validate_cron


def test_describe_schedule_uses_cron_descriptor() -> None:
    """Cron expressions, presets and manual schedules read as plain words."""
    assert describe_schedule("0 9 * * MON") == "At 09:00, only on Monday"
    assert describe_schedule("@hourly") == "Every hour"
    assert describe_schedule("*/15 8-18 * * 1-5") == (
        "Every 15 minutes, between 08:00 and 18:59, Monday through Friday"
    )
    assert describe_schedule("None") == "Triggered manually (no schedule)"
    assert describe_schedule("") == "Triggered manually (no schedule)"


def test_validate_cron_rejects_bad_expressions() -> None:
    """Unknown presets and malformed expressions raise with the reason."""
    assert validate_cron("@daily") == "0 0 * * *"
    with pytest.raises(ValueError, match="unknown preset"):
        validate_cron("@fortnightly")
    with pytest.raises(ValueError, match="not a valid five-field cron"):
        validate_cron("61 * * * *")
    with pytest.raises(ValueError, match="not a valid five-field cron"):
        validate_cron("0 9 * *")


def test_timetable_is_cron_trigger_in_timezone() -> None:
    """Cron schedules become campaign timetables (Airflow's cron trigger timetable) in the campaign's timezone."""
    from airflow.timetables.trigger import CronTriggerTimetable

    table = timetable("0 9 * * MON", "Europe/Paris")
    assert type(table).__name__ == "CampaignTimetable" and isinstance(table, CronTriggerTimetable)
    assert table.summary == "0 9 * * MON"
    assert table._timezone.name == "Europe/Paris"
    assert table.not_before is None
    assert timetable("@hourly", "UTC").summary == "0 * * * *"
    assert is_manual(None) and is_manual("manual") and not is_manual("@daily")
