"""The ``[campaign_runs]`` section: defaults, overrides through AIRFLOW__CAMPAIGN_RUNS__*."""

from __future__ import annotations

import pytest
from campaign_runs.settings import get_settings


def test_defaults() -> None:
    settings = get_settings()
    assert (settings.campaign_tag, settings.note_required, settings.note_max_length) == ("campaign", True, 2000)
    assert (settings.upcoming_runs, settings.page_size, settings.stop_grace_seconds) == (5, 25, 3.0)
    assert settings.base_url == "http://airflow.example.com"  # from [api] base_url


def test_environment_overrides_and_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__NOTE_MAX_LENGTH", "50")
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__BASE_URL", "https://campaigns.example.org/")
    get_settings.cache_clear()
    first = get_settings()
    assert (first.note_max_length, first.base_url) == (50, "https://campaigns.example.org")
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__NOTE_MAX_LENGTH", "60")
    assert get_settings() is first  # cached until cache_clear()
