"""The suppression list: addresses no campaign may send to on a channel, checked right before each message.

It lives beside the delivery ledger (``[campaign_runs] ledger_conn_id``'s PostgreSQL database, else
``<sink_dir>/suppressions.sqlite``) because channel tasks must read it mid-run, and Airflow 3 tasks have no
access to Airflow's own database. The API server, the CLI and the tasks share it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign_runs.factory.hygiene import ADDRESS_FIELDS, address_problem, normalised_address
from campaign_runs.factory.sqlite_files import wal_mode

TABLE = "campaign_suppression"
REASONS = ("unsubscribed", "bounced", "complained", "manual", "invalid")
CHANNELS = tuple(ADDRESS_FIELDS)
MAX_SOURCE = 200
PAGE_MAX = 1000
SCHEMA_LOCK = 0x43525350  # any constant of its own: serialises the table's creation


class SuppressionError(ValueError):
    """A suppression that cannot be recorded: an unknown channel or reason, an invalid address."""


@dataclass(frozen=True)
class Suppression:
    """One suppressed address on one channel."""

    channel: str
    address: str
    reason: str
    source: str
    actor: str
    created_at: str

    def as_dict(self) -> dict[str, str]:
        """JSON-able form."""
        return {
            "channel": self.channel,
            "address": self.address,
            "reason": self.reason,
            "source": self.source,
            "actor": self.actor,
            "created_at": self.created_at,
        }


def suppression_key(channel: str, address: str) -> str:
    """The address as the list compares it: emails case-insensitively, phone numbers without punctuation."""
    if channel not in ADDRESS_FIELDS:
        raise SuppressionError(f"unknown channel {channel[:40]!r} (known: {', '.join(CHANNELS)})")
    value = normalised_address(channel, address)
    return value.lower() if channel == "email" else value


class SuppressionList:
    """The ``campaign_suppression`` table over one DB-API connection, safe to share between sender threads."""

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres
        self.lock = threading.Lock()
        create = (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (channel TEXT NOT NULL, address TEXT NOT NULL, reason TEXT NOT NULL, "
            "source TEXT NOT NULL, actor TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (channel, address))"
        )
        if not postgres:
            self._execute(create)
            return
        # Tasks starting at once race on CREATE ... IF NOT EXISTS in PostgreSQL: one at a time, under a lock.
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor.execute(create)
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    @classmethod
    def sqlite(cls, path: Path) -> SuppressionList:
        """The list in SQLite file ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        wal_mode(connection)
        return cls(connection, postgres=False)

    @classmethod
    def postgresql(cls, connect_args: dict[str, Any]) -> SuppressionList:
        """The list in a PostgreSQL database (psycopg2 keyword arguments)."""
        import psycopg2

        connection = psycopg2.connect(
            **{"connect_timeout": 10, "application_name": "campaign_suppression", **connect_args}
        )
        connection.autocommit = True
        return cls(connection, postgres=True)

    def close(self) -> None:
        """Close the database connection."""
        self.connection.close()

    def __enter__(self) -> SuppressionList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> tuple[list[tuple[Any, ...]], int]:
        if self.postgres:
            statement = statement.replace("?", "%s")
        with self.lock:
            cursor = self.connection.cursor()
            try:
                cursor.execute(statement, params)
                return (list(cursor.fetchall()) if cursor.description else []), max(int(cursor.rowcount), 0)
            finally:
                cursor.close()

    def contains(self, channel: str, address: str) -> bool:
        """Whether ``address`` may not be sent to on ``channel`` (one primary-key lookup)."""
        rows, _ = self._execute(
            f"SELECT 1 FROM {TABLE} WHERE channel=? AND address=?", (channel, suppression_key(channel, address))
        )
        return bool(rows)

    def add(self, channel: str, address: str, *, reason: str, source: str, actor: str) -> bool:
        """Suppress ``address`` on ``channel``; False when it already was (the first entry is kept)."""
        key = suppression_key(channel, address)
        if reason not in REASONS:
            raise SuppressionError(f"unknown reason {reason[:40]!r} (known: {', '.join(REASONS)})")
        if (problem := address_problem(channel, normalised_address(channel, address))) is not None:
            raise SuppressionError(f"{address[:80]!r} is not a {channel} address ({problem.replace('_', ' ')})")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        _, added = self._execute(
            f"INSERT INTO {TABLE} (channel, address, reason, source, actor, created_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (channel, key, reason, source[:MAX_SOURCE], actor[:MAX_SOURCE], now),
        )
        return added == 1

    def remove(self, channel: str, address: str) -> bool:
        """Take ``address`` off the list for ``channel``; False when it was not on it."""
        _, removed = self._execute(
            f"DELETE FROM {TABLE} WHERE channel=? AND address=?", (channel, suppression_key(channel, address))
        )
        return removed == 1

    def entries(self, channel: str | None = None, *, after: str = "", limit: int = PAGE_MAX) -> list[Suppression]:
        """Entries in (channel, address) order, ``limit`` at most, after address ``after`` (keyset paging)."""
        limit = max(1, min(limit, PAGE_MAX))
        if channel is not None:
            suppression_key(channel, "")
            rows, _ = self._execute(
                f"SELECT * FROM {TABLE} WHERE channel=? AND address>? ORDER BY address LIMIT ?", (channel, after, limit)
            )
        else:
            rows, _ = self._execute(f"SELECT * FROM {TABLE} ORDER BY channel, address LIMIT ?", (limit,))
        return [Suppression(*(str(value) for value in row)) for row in rows]

    def every(self, channel: str | None = None) -> Iterator[Suppression]:
        """Every entry (of ``channel``), read a page at a time."""
        for name in [channel] if channel else CHANNELS:
            after = ""
            while page := self.entries(name, after=after):
                yield from page
                after = page[-1].address

    def count(self) -> dict[str, int]:
        """Entries per channel."""
        rows, _ = self._execute(f"SELECT channel, COUNT(*) FROM {TABLE} GROUP BY channel")
        return {str(row[0]): int(row[1]) for row in rows}

    def add_many(self, items: Iterable[tuple[str, str, str]], *, source: str, actor: str) -> tuple[int, int]:
        """Add (channel, address, reason) items; (added, already listed). Raises at the first invalid item."""
        added = kept = 0
        for channel, address, reason in items:
            if self.add(channel, address, reason=reason, source=source, actor=actor):
                added += 1
            else:
                kept += 1
        return added, kept


def open_suppressions(*, sink_dir: Path, conn_id: str = "") -> SuppressionList:
    """The suppression list: in Connection ``conn_id``'s database (the ledger's), else under ``sink_dir``."""
    if conn_id:
        from airflow.sdk import BaseHook

        from campaign_runs.factory.ledger import connect_args

        return SuppressionList.postgresql(connect_args(BaseHook.get_connection(conn_id)))
    return SuppressionList.sqlite(sink_dir / "suppressions.sqlite")
