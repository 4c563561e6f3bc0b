"""scripts/seed_subscribers.py: the subscribers table make run seeds once, and the Connection dev.py hands Airflow."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from scripts import seed_subscribers
from scripts.dev import DevConfig, airflow_settings, audience_lines, build_env

KEYS = {"fernet_key": "f", "api_secret_key": "a", "jwt_secret": "j"}


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM subscribers ORDER BY subscriber_id").fetchall()


def test_the_table_is_created_once_with_deterministic_rows(tmp_path: Path) -> None:
    """3,000 rows on the first call; a second call (another make run) changes nothing, even after an edit."""
    path = tmp_path / "home" / "subscribers.sqlite"
    assert seed_subscribers.seed(path) == (3000, True)
    first = _rows(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE subscribers SET first_name = 'Edited' WHERE subscriber_id = 'sub-00001'")
    assert seed_subscribers.seed(path) == (3000, False)
    assert _rows(path)[0][2] == "Edited", "an existing table is left as it is"
    other = tmp_path / "other.sqlite"
    seed_subscribers.seed(other)
    assert _rows(other)[1:] == first[1:], "the same rows everywhere"


def test_the_rows_exercise_every_hygiene_rule(tmp_path: Path) -> None:
    """Opted-out rows, rows without a push token, one address repeated in other letter case, one invalid."""
    path = tmp_path / "subscribers.sqlite"
    seed_subscribers.seed(path)
    with sqlite3.connect(path) as db:

        def count(where: str) -> int:
            return int(db.execute(f"SELECT COUNT(*) FROM subscribers WHERE {where}").fetchone()[0])

        assert count("opted_in = 0") == 150
        assert count("push_token IS NULL") == 1000
        assert count("LOWER(email) = 'alice.1@example.com'") == 2
        assert count("email NOT LIKE '%@%'") == 1
        assert count("joined > '2025-12-31T23:59:59+00:00' OR joined < '2024-01-01T00:00:00+00:00'") == 0
        assert db.execute("SELECT first_name, locale FROM subscribers WHERE subscriber_id='sub-00003'").fetchone() == (
            "Chloé",
            "en_GB",
        )


def test_make_run_hands_its_processes_the_seeded_connection(tmp_path: Path) -> None:
    """dev.py's environment names the seeded file as Connection subscribers_db, unless the caller has their own."""
    config = DevConfig(home=tmp_path, port=18080, smtp_port=18025)
    env = build_env(config, KEYS, {"PATH": "/usr/bin"})
    value = json.loads(env[seed_subscribers.CONN_ENV])
    assert value == {"conn_type": "sqlite", "host": str(tmp_path / "subscribers.sqlite")}
    assert airflow_settings(config, KEYS)[seed_subscribers.CONN_ENV] == env[seed_subscribers.CONN_ENV]
    own = "postgres://reader@crm.example.com/crm"
    assert build_env(config, KEYS, {seed_subscribers.CONN_ENV: own})[seed_subscribers.CONN_ENV] == own


def test_make_run_says_where_each_shipped_campaign_reads_its_audience() -> None:
    """The banner's audience lines: the newsletter's SQL Connection, the flash sale's CSV, the demo generator."""
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in audience_lines()}
    assert lines["weekly_newsletter"] == "SQL on Connection subscribers_db"
    assert lines["flash_sale"] == "CSV file data/flash_sale.csv"
    assert lines["cart_abandonment"] == "demo audience (synthetic)"
