"""Fixtures for the campaign factory tests: a private sink directory; every test here is marked ``factory``."""

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``factory``: none uses Airflow's metadata DB, so the PostgreSQL run skips them."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.factory)
