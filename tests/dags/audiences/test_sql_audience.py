"""A campaign reading its audience from a SQLite table through an Airflow Connection, run with ``dag.test()``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.dags.campaigns.runs import campaign_from_yaml, run_messages, xcoms

CAMPAIGN = """
id: sql_news
description: Newsletter to the subscribers table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience:
  source: sql
  conn_id: subscribers_db
  query: "SELECT subscriber_id, email, first_name, opted_in FROM subscribers WHERE joined <= :logical_date"
  columns: {id: subscriber_id}
  consent_column: opted_in
channels:
  email:
    subject: "Hello $first_name"
    body: "News for $first_name ($subscriber_id)"
    batch_size: 3
"""


@pytest.fixture
def subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite database with a ``subscribers`` table, behind Connection ``subscribers_db``."""
    path = tmp_path / "subscribers.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE subscribers (subscriber_id TEXT, email TEXT, first_name TEXT, opted_in INTEGER, joined TEXT)"
        )
        rows = [(f"s{n}", f"user{n}@example.org", f"User{n}", 1, "2025-01-01") for n in range(10)]
        rows += [
            ("s10", "USER1@example.org", "Dup", 1, "2025-01-01"),
            ("s11", "not-an-address", "Bad", 1, "2025-01-01"),
        ]
        rows += [("s12", "no@example.org", "No", 0, "2025-01-01"), ("s13", "late@example.org", "Late", 1, "2030-01-01")]
        db.executemany("INSERT INTO subscribers VALUES (?, ?, ?, ?, ?)", rows)
    monkeypatch.setenv("AIRFLOW_CONN_SUBSCRIBERS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_sql_audience_is_snapshotted_cleaned_and_sent(
    smtp_server: Any, sink_dir: Path, subscribers: Path, tmp_path: Path
) -> None:
    """10 good rows are sent; a duplicate address, an invalid one and a refusal of consent are skipped and counted."""
    dag = campaign_from_yaml(tmp_path, CAMPAIGN)
    run = dag.test(logical_date=pendulum.datetime(2026, 3, 2, 10, tz="UTC"))
    assert run.state == "success"
    emails = run_messages(smtp_server.messages, run.run_id)
    assert sorted(str(m["To"]) for m in emails) == sorted(f"user{n}@example.org" for n in range(10))
    progress = xcoms("sql_news", run.run_id)[("send_email", "campaign_progress")]
    assert progress["skipped"] == {"duplicate": 1, "invalid_address": 1, "no_consent": 1}
    assert (progress["total"], progress["sent"]) == (10, 10)


def test_an_audience_query_cannot_change_the_source(subscribers: Path) -> None:
    """The query runs read-only: a statement that writes fails with the database's message and changes nothing."""
    from campaign_runs.factory.sources import AudienceSourceError, SqlSource

    source = SqlSource(
        conn_id="subscribers_db", query="DELETE FROM subscribers RETURNING subscriber_id", timeout_seconds=5
    )
    with pytest.raises(AudienceSourceError, match=r"readonly|read-only|read only"):
        list(source.rows({}))
    with sqlite3.connect(subscribers) as db:
        assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone() == (14,)


def test_a_failing_query_fails_the_run_and_run_details_say_why(
    smtp_server: Any, sink_dir: Path, subscribers: Path, tmp_path: Path
) -> None:
    """The database's message reaches run details through build_audience's XCom, without reading its log."""
    from airflow.utils.session import create_session
    from campaign_runs.adapters.tasks import audience_result
    from campaign_runs.core.audience_info import audience_view

    dag = campaign_from_yaml(tmp_path, CAMPAIGN.replace("FROM subscribers", "FROM subscriber_list"))
    run = dag.test(logical_date=pendulum.datetime(2026, 3, 2, 10, tz="UTC"))
    assert run.state == "failed"
    assert run_messages(smtp_server.messages, run.run_id) == []
    with create_session() as session:
        view = audience_view(audience_result("sql_news", run.run_id, session), "failed", None, "")
    assert view.error == (
        "The audience could not be read (SQL query on Connection subscribers_db): "
        "the query failed: no such table: subscriber_list"
    )
