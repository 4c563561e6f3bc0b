"""Fixtures for the campaign DAG tests: the shipped dags folder, a private sink directory, the subscribers table."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.subscribers import subscribers_environment

DAGS = Path(__file__).resolve().parents[2] / "dags"
CAMPAIGNS = DAGS / "campaigns"
FLASH_SALE_CSV = CAMPAIGNS / "data" / "flash_sale.csv"  # the shipped flash_sale's audience (source: file)


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file (its header excluded): the audience of a campaign that reads it."""
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``[campaign_runs] sink_dir`` for one test."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


@pytest.fixture(autouse=True)
def subscribers_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection ``subscribers_db`` on the seeded ``subscribers`` table, as ``make run`` has it (weekly_newsletter)."""
    for name, value in subscribers_environment().items():
        monkeypatch.setenv(name, value)
