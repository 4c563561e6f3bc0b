"""Fixtures for the campaign DAG tests: the shipped dags folder and a private sink directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
CAMPAIGNS = DAGS / "campaigns"


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``[campaign_runs] sink_dir`` for one test."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path
