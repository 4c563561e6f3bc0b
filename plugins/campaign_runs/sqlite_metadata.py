"""Connect arguments for Airflow's metadata DB: on SQLite, the embedded default, wait for another process's write.

Point ``[database] sql_alchemy_connect_args`` at ``campaign_runs.sqlite_metadata.CONNECT_ARGS`` (``make run`` and
the tests do): on SQLite every Airflow process then waits up to 60 s for another one's write instead of failing
with "database is locked" after sqlite3's default 5 s, which a busy scheduler and dag-processor can exceed. On
any other database it is empty, so the setting can stay when the metadata DB moves to PostgreSQL.
"""

from __future__ import annotations

from typing import Any


def connect_args() -> dict[str, Any]:
    """``{"timeout": 60}`` when Airflow's metadata DB is SQLite, else nothing."""
    from airflow.configuration import conf

    return {"timeout": 60} if conf.get("database", "sql_alchemy_conn").startswith("sqlite") else {}


CONNECT_ARGS: dict[str, Any] = connect_args()
