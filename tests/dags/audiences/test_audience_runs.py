"""Campaign runs with real audiences through ``dag.test()``: a restart after the source changed, an audience of
nobody, and a CSV audience where someone unsubscribes while the run sends."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
from campaign_runs.factory.suppression import open_suppressions

from tests.dags.campaigns.runs import campaign_from_yaml, task_states, xcoms
from tests.support.recording_smtp import RecordingSmtp, recording_smtp

SQL_CAMPAIGN = """
id: {id}
description: Newsletter to the members table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {{cron: null, timezone: UTC, start_date: 2025-01-01}}
audience:
  source: sql
  conn_id: members_db
  query: >-
    SELECT member_id, email, first_name FROM members
    WHERE joined <= :logical_date AND country = :country ORDER BY member_id
  columns: {{id: member_id}}
channels:
  email: {{subject: "Hello $first_name", body: "News for $first_name", batch_size: 2}}
"""
LOGICAL = pendulum.datetime(2026, 3, 2, 10, tz="UTC")


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingSmtp]:
    """A real SMTP server; Airflow's ``[smtp]`` settings point at it."""
    with recording_smtp() as (handler, port):
        monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(port))
        yield handler


@pytest.fixture
def members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite ``members`` table (m0..m5 in FR, m6 in DE) behind Connection ``members_db``."""
    path = tmp_path / "members.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE members (member_id TEXT, email TEXT, first_name TEXT, joined TEXT, country TEXT)")
        db.executemany(
            "INSERT INTO members VALUES (?, ?, ?, '2026-01-01', ?)",
            [(f"m{n}", f"m{n}@example.org", f"M{n}", "DE" if n == 6 else "FR") for n in range(7)],
        )
    monkeypatch.setenv("AIRFLOW_CONN_MEMBERS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_a_restart_after_the_source_changed_sends_to_the_people_of_the_first_snapshot(
    smtp: RecordingSmtp, sink_dir: Path, members: Path, tmp_path: Path
) -> None:
    """The first run reaches 3 of 6 (3 are refused for now); rows are then added, removed and changed; the restart
    sends to exactly the 3 others of the first snapshot, at their addresses of then, and to no one new."""
    dag = campaign_from_yaml(tmp_path, SQL_CAMPAIGN.format(id="members_news"))
    later = "451 4.3.0 try again later"
    smtp.refuse = {"m1@example.org": later, "m3@example.org": later, "m4@example.org": later}
    first = dag.test(logical_date=LOGICAL, run_conf={"country": "FR"})
    assert first.state == "success"
    assert smtp.sent_to(first.run_id) == ["m0@example.org", "m2@example.org", "m5@example.org"]
    first_progress = xcoms("members_news", first.run_id)[("send_email", "campaign_progress")]
    assert (first_progress["total"], first_progress["sent"], first_progress["failed"]) == (6, 3, 3)

    smtp.refuse = {}
    with sqlite3.connect(members) as db:
        db.execute("DELETE FROM members WHERE member_id IN ('m0', 'm4')")  # one reached, one not
        db.execute("UPDATE members SET email = 'm3.new@example.org' WHERE member_id = 'm3'")
        db.execute("INSERT INTO members VALUES ('n1', 'n1@example.org', 'N1', '2026-01-01', 'FR')")
        db.execute("INSERT INTO members VALUES ('n2', 'n2@example.org', 'N2', '2026-01-01', 'FR')")
    iso = LOGICAL.isoformat()
    restart_conf = {
        "country": "FR",
        "campaign_restart_of": first.run_id,
        "campaign_slot": {"logical_date": iso, "data_interval_start": iso, "data_interval_end": iso},
    }
    second = dag.test(logical_date=None, run_conf=restart_conf)
    assert second.state == "success"
    assert smtp.sent_to(second.run_id) == ["m1@example.org", "m3@example.org", "m4@example.org"]
    values = xcoms("members_news", second.run_id)
    audience = values[("build_audience", "return_value")]
    assert (audience["restart_of"], audience["size"], audience["snapshot"]["reused"]) == (first.run_id, 6, True)
    assert values[("send_email", "return_value")]["already_reached"] == 3
    everyone = smtp.sent_to(first.run_id) + smtp.sent_to(second.run_id)
    assert sorted(everyone) == [f"m{n}@example.org" for n in range(6)]  # each of the first snapshot, once


def test_an_audience_of_nobody_is_a_successful_run_of_zero(
    smtp: RecordingSmtp, sink_dir: Path, members: Path, tmp_path: Path
) -> None:
    """A run param (from the run's conf) matching no row: every task succeeds, total 0, nothing sent."""
    dag = campaign_from_yaml(tmp_path, SQL_CAMPAIGN.format(id="members_nobody"))
    run = dag.test(logical_date=LOGICAL, run_conf={"country": "XX"})
    assert run.state == "success"
    assert set(task_states("members_nobody", run.run_id).values()) == {"success"}
    values = xcoms("members_nobody", run.run_id)
    assert values[("build_audience", "return_value")]["size"] == 0
    progress = values[("send_email", "campaign_progress")]
    assert (progress["total"], progress["sent"], progress["failed"], progress["suppressed"]) == (0, 0, 0, 0)
    assert values[("summarise", "return_value")]["complete"] is True
    assert smtp.delivered == []

    german = dag.test(logical_date=LOGICAL.add(days=1), run_conf={"country": "DE"})  # the param does pick rows
    assert smtp.sent_to(german.run_id) == ["m6@example.org"]


CSV_CAMPAIGN = """
id: csv_news
description: Newsletter to a CSV list kept beside the campaign.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience:
  source: file
  url: lists/readers.csv
  columns: {id: reader_id}
channels:
  email: {subject: "Hello $first_name", body: "News", batch_size: 3}
"""


def test_a_csv_audience_where_someone_unsubscribes_while_the_run_sends(
    smtp: RecordingSmtp, sink_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV beside the YAML; after the 3rd message reader 7 unsubscribes: no message for them, counted suppressed."""
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__AUDIENCE_FILE_ROOTS", str(tmp_path))
    (tmp_path / "lists").mkdir()
    rows = "".join(f"r{n},reader{n}@example.org,Reader{n}\n" for n in range(10))
    (tmp_path / "lists" / "readers.csv").write_text("reader_id,email,first_name\n" + rows, encoding="utf-8")

    def unsubscribe(count: int) -> None:
        if count == 3:
            with open_suppressions(sink_dir=sink_dir) as suppressions:
                suppressions.add("email", "Reader7@Example.org", reason="unsubscribed", source="link", actor="r7")

    smtp.after_message = unsubscribe
    dag = campaign_from_yaml(tmp_path, CSV_CAMPAIGN)
    run = dag.test(logical_date=LOGICAL)
    assert run.state == "success"
    assert smtp.sent_to(run.run_id) == [f"reader{n}@example.org" for n in range(10) if n != 7]
    values = xcoms("csv_news", run.run_id)
    assert values[("build_audience", "return_value")]["label"].startswith("CSV file file://")
    progress = values[("send_email", "campaign_progress")]
    assert (progress["total"], progress["sent"], progress["suppressed"]) == (9, 9, 1)
    assert values[("summarise", "return_value")]["channels"]["email"]["suppressed"] == 1
