"""Environment for Airflow processes started by tests and by the dev launcher."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("CAMPAIGN_RUNS_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
RESERVED_PORTS = {5432, 6379, 3306, 5672, 1883, 4222}
SQLITE_CONNECT_ARGS = "campaign_runs.sqlite_metadata.CONNECT_ARGS"


def free_port() -> int:
    """A free TCP port on loopback, never one of the machine's service ports."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def sql_alchemy_conn(home: Path, backend: str, pg_database: str) -> str:
    """Metadata DB URL for the chosen backend."""
    if backend == "postgres":
        server = PG_SERVER.replace("postgresql://", "postgresql+psycopg2://", 1)
        return f"{server}/{pg_database}"
    return f"sqlite:///{home / 'airflow.db'}"


def environment(home: Path, *, backend: str = "sqlite", pg_database: str = "") -> dict[str, str]:
    """AIRFLOW__* variables for a private Airflow installation under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    sqlite = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": SQLITE_CONNECT_ARGS} if backend == "sqlite" else {}
    return sqlite | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn(home, backend, pg_database),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW__FAB__SESSION_BACKEND": "securecookie",
        "AIRFLOW__CORE__FERNET_KEY": "mhX1u5Sl1Wr9nXzGgXg0rNnJ2dZ5GjZzVZ3s0vB7c2U=",
        "AIRFLOW__API__SECRET_KEY": "campaign-runs-test-secret",
        "AIRFLOW__API_AUTH__JWT_SECRET": "campaign-runs-test-jwt-secret-" + "0123456789abcdef" * 4,
        "AIRFLOW__SMTP__SMTP_HOST": "127.0.0.1",
        "AIRFLOW__SMTP__SMTP_PORT": "1",
        "AIRFLOW__SMTP__SMTP_STARTTLS": "False",
        "AIRFLOW__SMTP__SMTP_SSL": "False",
        "AIRFLOW__SMTP__SMTP_RETRY_LIMIT": "0",
        "AIRFLOW__SMTP__SMTP_TIMEOUT": "5",
        "AIRFLOW__SMTP__SMTP_MAIL_FROM": "campaign-runs@example.com",
        "AIRFLOW__API__BASE_URL": "http://airflow.example.com",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CAMPAIGN_RUNS__HOUSEKEEPING_INTERVAL": "0.5",
    }


def migrate(env: dict[str, str]) -> None:
    """Run the real ``airflow db migrate`` (Airflow's tables, FAB's and ours)."""
    subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG_SERVER}/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_pg_database(name: str) -> None:
    """Create an empty PostgreSQL database for this test session."""
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')


def drop_pg_database(name: str) -> None:
    """Drop the test session's PostgreSQL database."""
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
