"""A private campaigns folder for tests of pages, routes and commands that read or write definitions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def process_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection look-ups as a server are undone after each test (import this fixture into a test module)."""
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)


@contextmanager
def campaigns_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str = "") -> Iterator[Path]:
    """``[campaign_runs] definitions_folder`` and ``sink_dir`` under ``tmp_path``; ``text`` saved as version 1."""
    from campaign_runs.core import definitions
    from campaign_runs.settings import get_settings

    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(tmp_path / "sinks"))  # nothing may create it
    get_settings.cache_clear()
    try:
        if text:
            definitions.create_definition(text, actor="alice", note="")
        yield path
    finally:
        get_settings.cache_clear()
