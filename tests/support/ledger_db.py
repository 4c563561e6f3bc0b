"""A private PostgreSQL database for the delivery ledger, created and dropped by the tests that use it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.support.airflow_env import PG_SERVER, create_pg_database, drop_pg_database

LEDGER_CONN_ID = "campaign_ledger"


def connect_args(database: str) -> dict[str, Any]:
    """psycopg2 keyword arguments for ``database`` on the test PostgreSQL server."""
    server = urlsplit(PG_SERVER)
    args = {"host": server.hostname or "127.0.0.1", "port": server.port or 5432, "dbname": database}
    args["user"] = server.username or "postgres"
    if server.password:
        args["password"] = server.password
    return args


def connection_uri(database: str) -> str:
    """An Airflow Connection URI (``AIRFLOW_CONN_<ID>``) for ``database`` on the test PostgreSQL server."""
    server = urlsplit(PG_SERVER)
    return f"postgres://{server.netloc}/{database}"


@contextmanager
def ledger_database(purpose: str) -> Iterator[str]:
    """A new, uniquely named database for one test module or session; dropped on exit."""
    name = f"campaign_ledger_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    create_pg_database(name)
    try:
        yield name
    finally:
        drop_pg_database(name)


def ledger_rows(database: str, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """(channel, recipient, run_id, status) of the ledger table's rows matching ``where``, in audience order."""
    import psycopg2

    connection = psycopg2.connect(**connect_args(database))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT channel, recipient, run_id, status FROM campaign_delivery_ledger "
                f"WHERE {where} ORDER BY channel, position",
                params,
            )
            return list(cursor.fetchall())
    finally:
        connection.close()
