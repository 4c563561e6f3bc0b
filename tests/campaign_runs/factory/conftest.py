"""Fixtures for the campaign factory tests: a private sink directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``[campaign_runs] sink_dir`` for one test."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path
