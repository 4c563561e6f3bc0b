"""The compose PostgreSQL's subscribers seed, run on the test server: make run's rows, a role that can only read them.

docker/postgres-init/20-subscribers.sh is run as the image runs it (bash, as the superuser) for a unique role and
database; the shipped weekly_newsletter's query then reads the same recipients there as from the SQLite seed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg2
import pytest
from campaign_runs.factory.sources import SqlSource
from campaign_runs.factory.spec import load_spec

from scripts import seed_subscribers
from tests.support.airflow_env import PG_SERVER

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "postgres-init" / "20-subscribers.sh"
NEWSLETTER = REPO / "dags" / "campaigns" / "weekly_newsletter.yaml"
SERVER = urlsplit(PG_SERVER)


@dataclass(frozen=True)
class AudienceDb:
    """What the init script was given: the read-only role, its password and the database."""

    role: str
    password: str
    database: str

    def connect_args(self) -> dict[str, Any]:
        """psycopg2 arguments to connect as the role."""
        host, port = SERVER.hostname or "127.0.0.1", SERVER.port or 5432
        return {"host": host, "port": port, "dbname": self.database, "user": self.role, "password": self.password}

    def uri(self) -> str:
        """The Airflow Connection URI of the role, as docker-compose.yml writes it."""
        host, port = SERVER.hostname or "127.0.0.1", SERVER.port or 5432
        return f"postgres://{self.role}:{quote(self.password, safe='')}@{host}:{port}/{self.database}"


def _admin_connect(dbname: str) -> Any:
    user, password = SERVER.username or "postgres", SERVER.password
    host, port = SERVER.hostname or "127.0.0.1", SERVER.port or 5432
    connection = psycopg2.connect(host=host, port=port, dbname=dbname, user=user, password=password)
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def audience_db() -> Iterator[AudienceDb]:
    """The init script run for a unique role and database on the test server; both dropped afterwards."""
    if shutil.which("psql") is None:
        pytest.skip("the init script needs the psql client")
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    made = AudienceDb(f"cr_audience_{suffix}", secrets.token_urlsafe(16), f"cr_subscribers_{suffix}")
    env = {
        **os.environ,
        "PGHOST": SERVER.hostname or "127.0.0.1",
        "PGPORT": str(SERVER.port or 5432),
        "POSTGRES_USER": SERVER.username or "postgres",
        "POSTGRES_DB": "postgres",
        "SUBSCRIBERS_DB_USER": made.role,
        "SUBSCRIBERS_DB": made.database,
        "SUBSCRIBERS_DB_PASSWORD": made.password,
    }
    if SERVER.password:
        env["PGPASSWORD"] = SERVER.password
    try:
        result = subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr
        yield made
    finally:
        with closing(_admin_connect("postgres")) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{made.database}" WITH (FORCE)')
            cursor.execute(f'DROP ROLE IF EXISTS "{made.role}"')


def test_the_seed_holds_the_rows_of_make_run(audience_db: AudienceDb) -> None:
    """Row for row, the PostgreSQL table holds what scripts/seed_subscribers.py writes into SQLite."""
    with closing(psycopg2.connect(**audience_db.connect_args())) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT subscriber_id, email, first_name, locale, opted_in, push_token, joined "
            "FROM subscribers ORDER BY subscriber_id"
        )
        rows = cursor.fetchall()
    expected = [
        (s.subscriber_id, s.email, s.first_name, s.locale, s.opted_in, s.push_token, s.joined)
        for s in seed_subscribers.subscribers()
    ]
    assert len(rows) == seed_subscribers.ROWS
    assert rows == expected


def test_the_role_reads_the_table_and_writes_nothing(audience_db: AudienceDb) -> None:
    """The Connection's role may SELECT; it may not change the table or create one, and has no privilege."""
    with closing(psycopg2.connect(**audience_db.connect_args())) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM subscribers")
            assert cursor.fetchone() == (seed_subscribers.ROWS,)
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):  # its sessions are read-only by default
                cursor.execute("DELETE FROM subscribers")
            cursor.execute("SET default_transaction_read_only = off")  # and without that, its grants forbid it
        for statement in (
            "DELETE FROM subscribers",
            "UPDATE subscribers SET opted_in = true",
            "CREATE TABLE t (i int)",
        ):
            with connection.cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(statement)
    with closing(_admin_connect(audience_db.database)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname=%s",
            (audience_db.role,),
        )
        assert cursor.fetchone() == (False, False, False, False, False)


@pytest.mark.parametrize("logical_date", ["2025-03-10T08:00:00+00:00", None])
def test_the_newsletter_query_reads_the_same_people_on_both_databases(
    audience_db: AudienceDb, logical_date: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The shipped query, run by the real ``SqlSource`` through an ``AIRFLOW_CONN_`` Connection, gives the same
    rows on the compose PostgreSQL (psycopg, ``timestamptz``) as on make run's SQLite file (ISO text)."""
    audience = load_spec(NEWSLETTER).audience
    values = {"logical_date": logical_date, "data_interval_start": None, "data_interval_end": None, "run_id": "r"}

    def rows(conn_value: str) -> list[dict[str, Any]]:
        monkeypatch.setenv(seed_subscribers.CONN_ENV, conn_value)
        source = SqlSource(conn_id=audience.conn_id, query=audience.query, timeout_seconds=60)
        return [{**row, "opted_in": bool(row["opted_in"])} for row in source.rows(values)]

    sqlite_file = tmp_path / seed_subscribers.FILE_NAME
    seed_subscribers.seed(sqlite_file)
    on_sqlite = rows(seed_subscribers.connection_value(sqlite_file))
    on_postgres = rows(audience_db.uri())
    assert on_postgres == on_sqlite
    assert (len(on_sqlite) == seed_subscribers.ROWS) is (logical_date is None)
    assert len(on_sqlite) > 0
