"""The audience preview and checks (``factory.preview``) on a real SQLite database behind an Airflow Connection.

The preview counts every row, keeps only the first few, says why a run would skip each on each channel and
renders one message per channel; it writes nothing (no ledger, no snapshot) and runs no statement but a SELECT.
"""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.factory.preview import AudiencePreview, check_audience, preview_audience
from campaign_runs.factory.sources import AudienceSourceError
from campaign_runs.factory.spec import CampaignSpec, parse_spec

CAMPAIGN = """
id: sql_news
description: Newsletter to the subscribers table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience:
  source: sql
  conn_id: subscribers_db
  query: "SELECT subscriber_id, email, mobile, first_name, opted_in FROM subscribers WHERE joined <= :logical_date"
  columns: {id: subscriber_id, phone: mobile}
  consent_column: opted_in
channels:
  email:
    subject: "Hello $first_name"
    body: "News for $first_name ($subscriber_id) from $campaign_id"
  sms:
    text: "Hi $first_name, news at $run_id"
"""
ROWS = [
    ("s0", "user0@example.org", "", "Ann", 1, "2025-01-01"),  # no phone: skipped on sms only
    ("s1", "not-an-address", "+33612345678", "Bad", 1, "2025-01-01"),
    ("s2", "no@example.org", "+33600000002", "No", 0, "2025-01-01"),
    ("s3", "user3@example.org", "+33600000003", "<b>Dee</b>", 1, "2025-01-01"),
    (None, "anon@example.org", "+33600000004", "Anon", 1, "2025-01-01"),
    ("s5", "late@example.org", "+33600000005", "Late", 1, "2999-01-01"),  # joins after now: not in the audience
]


def spec_of(text: str, tmp_path: Path) -> CampaignSpec:
    return parse_spec(yaml.safe_load(text), tmp_path / "sql_news.yaml")


def fill(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS subscribers")
        db.execute(
            "CREATE TABLE subscribers "
            "(subscriber_id TEXT, email TEXT, mobile TEXT, first_name TEXT, opted_in INTEGER, joined TEXT)"
        )
        db.executemany("INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, ?)", rows)


def table(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT * FROM subscribers ORDER BY rowid"))


@pytest.fixture(autouse=True)
def process_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever marks this process a server for Connection look-ups is undone after the test."""
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)


@pytest.fixture
def subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SQLite database with a ``subscribers`` table, behind Connection ``subscribers_db``."""
    path = tmp_path / "subscribers.db"
    fill(path, ROWS)
    monkeypatch.setenv("AIRFLOW_CONN_SUBSCRIBERS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    yield path


def test_the_preview_counts_shows_the_first_rows_with_their_skips_and_renders_one_message_per_channel(
    subscribers: Path, sink_dir: Path, tmp_path: Path
) -> None:
    preview = preview_audience(spec_of(CAMPAIGN, tmp_path), limit=3)

    assert isinstance(preview, AudiencePreview)
    assert (preview.campaign, preview.source, preview.count) == ("sql_news", "sql", 5)
    assert preview.label == "SQL query on Connection subscribers_db"
    assert preview.columns == ("subscriber_id", "email", "mobile", "first_name", "opted_in")
    assert [(r.position, r.id, r.email, r.phone, r.skipped) for r in preview.rows] == [
        (0, "s0", "user0@example.org", "", {"email": None, "sms": "no_address"}),
        (1, "s1", "not-an-address", "+33612345678", {"email": "invalid_address", "sms": None}),
        (2, "s2", "no@example.org", "+33600000002", {"email": "no_consent", "sms": "no_consent"}),
    ]
    assert preview.rows[0].fields == {"subscriber_id": "s0", "mobile": "", "first_name": "Ann", "opted_in": 1}
    assert preview.skipped == {
        "email": {"invalid_address": 1, "no_consent": 1, "no_id": 1},
        "sms": {"no_address": 1, "no_consent": 1, "no_id": 1},
    }
    assert preview.sendable == {"email": 2, "sms": 2}
    assert [(m.channel, m.recipient, m.position, m.content) for m in preview.messages] == [
        ("email", "s0", 0, {"subject": "Hello Ann", "body": "News for Ann (s0) from sql_news"}),
        ("sms", "s1", 1, {"sender": "CAMPAIGN", "text": "Hi Bad, news at preview"}),
    ]
    assert preview.problems == ()
    assert json.loads(json.dumps(preview.as_dict()))["rows"][2]["skipped"] == {
        "email": "no_consent",
        "sms": "no_consent",
    }


def test_the_preview_writes_nothing_and_runs_no_statement_but_a_select(
    subscribers: Path, sink_dir: Path, tmp_path: Path
) -> None:
    before = table(subscribers)
    preview_audience(spec_of(CAMPAIGN, tmp_path))
    check_audience(spec_of(CAMPAIGN, tmp_path))
    assert not sink_dir.exists()  # no ledger file, so no snapshot table and no snapshot row
    assert table(subscribers) == before

    query = CAMPAIGN.split("query: ")[1].split("\n")[0]
    deleting = CAMPAIGN.replace(query, '"DELETE FROM subscribers"')
    with pytest.raises(AudienceSourceError, match="the query failed"):  # refused reading its columns, before any row
        preview_audience(spec_of(deleting, tmp_path))
    assert table(subscribers) == before and not sink_dir.exists()


def test_counting_keeps_memory_flat(subscribers: Path, tmp_path: Path) -> None:
    """Every row is counted, only ``limit`` are kept: 10,000 rows cost what 3 do."""
    fill(subscribers, [(f"s{n}", f"u{n}@example.org", "", "x" * 200, 1, "2025-01-01") for n in range(10_000)])
    spec = spec_of(CAMPAIGN, tmp_path)
    preview_audience(spec, limit=2)  # imports and caches warm
    tracemalloc.start()
    try:
        preview = preview_audience(spec, limit=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert preview.count == 10_000 and len(preview.rows) == 2
    assert peak < 3_000_000, peak  # the rows themselves would take megabytes


def test_an_unreadable_source_is_the_databases_own_message(subscribers: Path, tmp_path: Path) -> None:
    missing = CAMPAIGN.replace("FROM subscribers", "FROM nowhere_table")
    with pytest.raises(AudienceSourceError, match="the query failed: no such table: nowhere_table"):
        preview_audience(spec_of(missing, tmp_path))
    assert check_audience(spec_of(missing, tmp_path)) == [
        "audience.query: the query failed: no such table: nowhere_table"
    ]


def test_an_unknown_connection_is_named(subscribers: Path, tmp_path: Path) -> None:
    elsewhere = CAMPAIGN.replace("conn_id: subscribers_db", "conn_id: nowhere_db")
    assert check_audience(spec_of(elsewhere, tmp_path)) == [
        "audience.conn_id: the Connection 'nowhere_db' does not exist"
    ]
    with pytest.raises(AudienceSourceError, match="the Connection 'nowhere_db' does not exist"):
        preview_audience(spec_of(elsewhere, tmp_path))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("($subscriber_id)", "($voucher)"), "channels.email.body: the source has no column 'voucher'"),
        (("Hi $first_name", "Hi ${nickname}"), "channels.sms.text: the source has no column 'nickname'"),
        (("phone: mobile}", "phone: cell}"), "audience.columns.phone: the source has no column 'cell'"),
        (("consent_column: opted_in", "consent_column: agreed"), "audience.consent_column: the source has no column"),
        (("{id: subscriber_id, ", "{"), "audience.columns: the source has no column 'id'"),
    ],
    ids=["email-body-placeholder", "sms-text-placeholder", "mapped-column", "consent-column", "no-id-column"],
)
def test_check_names_what_the_source_lacks(
    subscribers: Path, tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    assert check_audience(spec_of(CAMPAIGN, tmp_path)) == []
    problems = check_audience(spec_of(CAMPAIGN.replace(*change), tmp_path))
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    assert "it returns: subscriber_id, email, mobile, first_name, opted_in" in problems[0]


def test_a_placeholder_problem_names_channel_setting_and_placeholder(subscribers: Path, tmp_path: Path) -> None:
    (problem,) = check_audience(spec_of(CAMPAIGN.replace("($subscriber_id)", "($voucher)"), tmp_path))
    assert problem.startswith("channels.email.body: the source has no column 'voucher' (unknown placeholder $voucher")
    preview = preview_audience(spec_of(CAMPAIGN.replace("($subscriber_id)", "($voucher)"), tmp_path))
    assert (
        preview.problems == (problem,)
        and preview.messages[0].content["body"] == "News for Ann ($voucher) from sql_news"
    )


def test_the_demo_audience_is_previewed_as_synthetic(tmp_path: Path, sink_dir: Path) -> None:
    demo = CAMPAIGN.split("audience:")[0] + (
        "audience: {segment: testers, size: 40, criteria: {plan: gold}}\n"
        'channels: {email: {subject: "Hi $first_name", body: "Your $plan plan"}}\n'
    )
    preview = preview_audience(spec_of(demo, tmp_path), limit=4)
    assert (preview.source, preview.label, preview.count, len(preview.rows)) == (
        "demo",
        "demo audience (synthetic)",
        40,
        4,
    )
    assert all(row.email.endswith("@example.com") and row.skipped == {"email": None} for row in preview.rows)
    (message,) = preview.messages
    first = preview.rows[0]
    assert message.content == {"subject": f"Hi {first.fields['first_name']}", "body": "Your gold plan"}
    assert check_audience(spec_of(demo, tmp_path)) == [] and not sink_dir.exists()


def test_a_limit_outside_0_to_100_is_refused(subscribers: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        preview_audience(spec_of(CAMPAIGN, tmp_path), limit=101)
    assert preview_audience(spec_of(CAMPAIGN, tmp_path), limit=0).rows == ()
