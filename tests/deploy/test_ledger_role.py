"""The compose PostgreSQL's init script, run on the test server: the ledger's role gets its own database only."""

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
from urllib.parse import urlsplit

import psycopg2
import pytest
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.ledger import POSTGRES_TABLE, PostgresLedger

from tests.support.airflow_env import PG_SERVER

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "postgres-init" / "10-campaign-ledger.sh"
SERVER = urlsplit(PG_SERVER)


@dataclass(frozen=True)
class LedgerRole:
    """What the init script was given: the role, its password, its database and the metadata database."""

    role: str
    password: str
    database: str
    metadata_db: str


def _connect(dbname: str, user: str | None = None, password: str | None = None) -> Any:
    """A psycopg2 connection to the test server (as its superuser unless ``user`` is given), in autocommit."""
    if user is None:
        user, password = SERVER.username or "postgres", SERVER.password
    args: dict[str, Any] = {"host": SERVER.hostname or "127.0.0.1", "port": SERVER.port or 5432, "dbname": dbname}
    connection = psycopg2.connect(**args, user=user, password=password, connect_timeout=10)
    connection.autocommit = True
    return connection


def _admin(*statements: str) -> None:
    """Run ``statements`` as the server's superuser in its maintenance database."""
    with closing(_connect("postgres")) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _recipient(position: int) -> Recipient:
    """A recipient the ledger can claim."""
    return Recipient(
        id=f"r{position}", position=position, email=f"r{position}@example.com", values={"first_name": "Ada"}
    )


@pytest.fixture
def ledger_role() -> Iterator[LedgerRole]:
    """A metadata database holding a table, then the init script run for a unique role and ledger database."""
    if shutil.which("psql") is None:
        pytest.skip("the init script needs the psql client")
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    made = LedgerRole(f"cr_ledger_{suffix}", secrets.token_urlsafe(16), f"cr_ledger_db_{suffix}", f"cr_meta_{suffix}")
    _admin(f'CREATE DATABASE "{made.metadata_db}"')
    try:
        with closing(_connect(made.metadata_db)) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE dag_run (id int); INSERT INTO dag_run VALUES (1)")
        env = {
            **os.environ,
            "PGHOST": SERVER.hostname or "127.0.0.1",
            "PGPORT": str(SERVER.port or 5432),
            "POSTGRES_USER": SERVER.username or "postgres",
            "POSTGRES_DB": made.metadata_db,
            "CAMPAIGN_LEDGER_USER": made.role,
            "CAMPAIGN_LEDGER_DB": made.database,
            "CAMPAIGN_LEDGER_PASSWORD": made.password,
        }
        if SERVER.password:
            env["PGPASSWORD"] = SERVER.password
        result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        yield made
    finally:
        _admin(
            f'DROP DATABASE IF EXISTS "{made.database}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{made.metadata_db}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{made.role}"',
        )


def test_the_ledger_role_runs_the_ledger_in_its_own_database(ledger_role: LedgerRole) -> None:
    """As the new role, the real PostgresLedger creates its table (in the role's schema) and claims and settles."""
    args = {
        "host": SERVER.hostname or "127.0.0.1",
        "port": SERVER.port or 5432,
        "dbname": ledger_role.database,
        "user": ledger_role.role,
        "password": ledger_role.password,
    }
    for attempt in range(2):  # the second opening finds the table and index already there
        with PostgresLedger(args, "campaign", "slot", "email") as ledger:
            assert ledger.claim(_recipient(attempt), "run-1")
            ledger.settle(confirm=[f"r{attempt}"])
            assert ledger.counts(10).sent == attempt + 1
    with closing(_connect(ledger_role.database)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT schemaname, tableowner FROM pg_tables WHERE tablename = %s", (POSTGRES_TABLE,))
        assert cursor.fetchall() == [(ledger_role.role, ledger_role.role)]
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname=%s",
            (ledger_role.role,),
        )
        assert cursor.fetchone() == (False, False, False, False, False)


def test_the_ledger_role_reaches_nothing_else(ledger_role: LedgerRole) -> None:
    """The role cannot open the metadata database, nor create schemas or public tables in its own."""
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(ledger_role.metadata_db, ledger_role.role, ledger_role.password).close()
    with closing(_connect(ledger_role.database, ledger_role.role, ledger_role.password)) as connection:
        for statement in ("CREATE SCHEMA other", "CREATE TABLE public.other (id int)", "CREATE DATABASE other"):
            with connection.cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(statement)
    # The superuser still uses the metadata database as before.
    with closing(_connect(ledger_role.metadata_db)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM dag_run")
        assert cursor.fetchall() == [(1,)]
