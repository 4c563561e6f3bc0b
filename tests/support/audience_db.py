"""A SQL audience for the plugin's tests: a SQLite ``subscribers`` table behind Connection ``subscribers_db``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

CONN_ENV = "AIRFLOW_CONN_SUBSCRIBERS_DB"
HOSTILE_NAME = "<script>alert(1)</script>"
ROWS: list[tuple[Any, ...]] = [
    ("s0", "ann@example.org", "Ann", 1, "2025-01-01"),
    ("s1", "not-an-address", "Bad", 1, "2025-01-01"),
    ("s2", "no@example.org", "No", 0, "2025-01-01"),
    ("s3", "dee@example.org", HOSTILE_NAME, 1, "2025-01-01"),
    ("s4", "late@example.org", "Late", 1, "2999-01-01"),  # joins after now: not in the audience
]
TEMPLATE = """\
id: ID_HERE
description: Newsletter to the subscribers table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule:
  cron: null
  timezone: UTC
  start_date: 2025-01-01
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
"""


def sql_campaign(dag_id: str) -> str:
    """A campaign whose audience is the ``subscribers`` table, with id ``dag_id``."""
    return TEMPLATE.replace("ID_HERE", dag_id)


def create_subscribers(path: Path, rows: list[tuple[Any, ...]] = ROWS) -> dict[str, str]:
    """Write the SQLite file; the environment variable of Connection ``subscribers_db`` pointing at it."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS subscribers")
        db.execute(
            "CREATE TABLE subscribers (subscriber_id TEXT, email TEXT, first_name TEXT, opted_in INT, joined TEXT)"
        )
        db.executemany("INSERT INTO subscribers VALUES (?, ?, ?, ?, ?)", rows)
    return {CONN_ENV: json.dumps({"conn_type": "sqlite", "host": str(path)})}


def subscriber_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of the table, in order: what a test compares before and after."""
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT * FROM subscribers ORDER BY rowid"))
