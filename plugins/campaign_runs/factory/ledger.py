"""Delivery ledger: who was reached, per (campaign, slot, channel, recipient), outside Airflow's DB.

A recipient is written ``pending`` (committed) right before its message leaves and turned ``sent`` after;
a ``pending`` row left by a killed process is a recipient *in doubt*: not sent again by a restart unless
the restart asks to resend them (``reclaim``). Two backends: a SQLite file per campaign under the sink
directory, or one table in a PostgreSQL database named by an Airflow Connection, whose claim and settle are
statements of its own (one round trip each).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.audience import WHOLE, Shard
from campaign_runs.factory.sqlite_files import wal_mode

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

PENDING = "pending"
SENT = "sent"
SQLITE_TABLE = "deliveries"
POSTGRES_TABLE = "campaign_delivery_ledger"
LOOKUP_CHUNK = 500
KEY = "campaign=? AND slot=? AND channel=?"
T = "{t}"  # stands for the table in statements; see DeliveryLedger.sql
COLUMNS = "campaign, slot, channel, recipient, position, run_id, sent_at, status"
# PostgreSQL: confirm (?: now, key, ids) and release (key, ids) pending rows inside the statement that follows.
SETTLE_CTES = (
    f"WITH confirmed AS (UPDATE {T} SET status='{SENT}', sent_at=? WHERE {KEY} AND recipient = ANY(?) "
    f"AND status='{PENDING}' RETURNING 1), released AS (DELETE FROM {T} WHERE {KEY} AND recipient = ANY(?) "
    f"AND status='{PENDING}' RETURNING 1)"
)
# Any constant: serialises the CREATE ... IF NOT EXISTS of workers starting at once (PostgreSQL races on it).
SCHEMA_LOCK = 0x43414D50


@dataclass(frozen=True)
class LedgerCounts:
    """Recipients of a slot and channel confirmed sent, and in doubt (claimed, never confirmed)."""

    sent: int = 0
    in_doubt: int = 0


class DeliveryLedger(ABC):
    """The ledger of one campaign, slot and channel: one small committed transaction per message.

    Subclasses give the DB-API connection, the table, the placeholder style and how a write transaction begins,
    and may replace a statement (PostgreSQL's claim and settle); every statement reads only rows of this key
    (primary key or ``status`` index prefix).
    """

    table: ClassVar[str]
    begin: ClassVar[str] = "BEGIN"

    def __init__(self, connection: Any, campaign: str, slot: str, channel: str) -> None:
        self.connection = connection
        self.campaign = campaign
        self.slot = slot
        self.channel = channel
        self.key = (campaign, slot, channel)
        self._statements: dict[str, str] = {}

    @abstractmethod
    def sql(self, statement: str) -> str:
        """``statement`` (written with ``?`` placeholders and ``{t}`` for the table) in this backend's dialect."""

    @abstractmethod
    def now(self) -> Any:
        """The current time as this backend stores it."""

    def close(self) -> None:
        """Close the database connection."""
        self.connection.close()

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, statement: str) -> str:
        """``sql(statement)``, translated once per statement."""
        if (translated := self._statements.get(statement)) is None:
            translated = self._statements[statement] = self.sql(statement)
        return translated

    def _rows(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(self._sql(statement), tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One committed write transaction (the connection is in autocommit mode outside it)."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.begin)
            try:
                yield cursor
            except BaseException:
                with suppress(Exception):  # the transaction may already be gone with its connection
                    cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def _write(self, cursor: Any, statement: str, params: Sequence[Any]) -> int:
        cursor.execute(self._sql(statement), tuple(params))
        return max(int(cursor.rowcount), 0)

    def counts(self, audience_size: int, shard: Shard = WHOLE) -> LedgerCounts:
        """Sent and in-doubt recipients among the first ``audience_size`` of this slot and channel (in ``shard``)."""
        rows = self._rows(
            f"SELECT status, COUNT(*) FROM {T} WHERE {KEY} AND position<?{shard.where} GROUP BY status",
            (*self.key, audience_size, *shard.params),
        )
        by_status = {row[0]: int(row[1]) for row in rows}
        return LedgerCounts(sent=by_status.get(SENT, 0), in_doubt=by_status.get(PENDING, 0))

    def reached_count(self, audience_size: int) -> int:
        """How many of the first ``audience_size`` recipients were confirmed sent in this slot."""
        return self.counts(audience_size).sent

    def already_reached(self, recipient_ids: Sequence[str]) -> set[str]:
        """The subset of ``recipient_ids`` with a row in this slot, sent or in doubt: none is claimed again."""
        found: set[str] = set()
        for start in range(0, len(recipient_ids), LOOKUP_CHUNK):
            chunk = recipient_ids[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(f"SELECT recipient FROM {T} WHERE {KEY} AND recipient IN ({marks})", (*self.key, *chunk))
            found.update(row[0] for row in rows)
        return found

    def claim(
        self, recipient: Recipient, run_id: str, *, confirm: Iterable[str] = (), release: Iterable[str] = ()
    ) -> bool:
        """In one transaction: settle earlier messages, then write ``recipient`` pending; False if it has a row."""
        with self._transaction() as cursor:
            self._settle(cursor, confirm, release)
            return self._insert(cursor, recipient, run_id, PENDING) == 1

    def reclaim(
        self,
        recipient: Recipient,
        run_id: str,
        *,
        claimed_by: str,
        confirm: Iterable[str] = (),
        release: Iterable[str] = (),
    ) -> bool:
        """Settle earlier messages, then take ``recipient``'s pending row over from run ``claimed_by``.

        A compare-and-set on the row's run id: of runs racing to resend the same recipient, one wins.
        """
        with self._transaction() as cursor:
            self._settle(cursor, confirm, release)
            changed = self._write(
                cursor,
                f"UPDATE {T} SET run_id=?, sent_at=? WHERE {KEY} AND recipient=? AND status='{PENDING}' AND run_id=?",
                (run_id, self.now(), *self.key, recipient.id, claimed_by),
            )
            return changed == 1

    def settle(self, confirm: Iterable[str] = (), release: Iterable[str] = ()) -> None:
        """Turn the pending rows of ``confirm`` into ``sent`` and delete those of ``release`` (refused)."""
        confirm, release = list(confirm), list(release)
        if confirm or release:
            with self._transaction() as cursor:
                self._settle(cursor, confirm, release)

    def _settle(self, cursor: Any, confirm: Iterable[str], release: Iterable[str]) -> None:
        for recipient_id in confirm:
            self._write(
                cursor,
                f"UPDATE {T} SET status='{SENT}', sent_at=? WHERE {KEY} AND recipient=? AND status='{PENDING}'",
                (self.now(), *self.key, recipient_id),
            )
        for recipient_id in release:
            self._write(
                cursor, f"DELETE FROM {T} WHERE {KEY} AND recipient=? AND status='{PENDING}'", (*self.key, recipient_id)
            )

    def _insert(self, cursor: Any, recipient: Recipient, run_id: str, status: str) -> int:
        return self._write(
            cursor,
            f"INSERT INTO {T} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (*self.key, recipient.id, recipient.position, run_id, self.now(), status),
        )

    def record(self, recipients: Iterable[Recipient], run_id: str) -> int:
        """Record recipients as sent in one transaction (no pending step); returns how many rows were new."""
        recipients = list(recipients)
        if not recipients:
            return 0
        with self._transaction() as cursor:
            return sum(self._insert(cursor, recipient, run_id, SENT) for recipient in recipients)

    def in_doubt(self) -> list[str]:
        """Recipients of this slot and channel claimed but never confirmed, in audience order."""
        rows = self._rows(f"SELECT recipient FROM {T} WHERE {KEY} AND status='{PENDING}' ORDER BY position", self.key)
        return [row[0] for row in rows]

    def doubtful(self, run_id: str, audience_size: int, shard: Shard = WHOLE) -> list[tuple[int, str]]:
        """(position, run id holding it) of the recipients in doubt not held by ``run_id``, in audience order."""
        rows = self._rows(
            f"SELECT position, run_id FROM {T} WHERE {KEY} AND status='{PENDING}' AND run_id<>? AND position<?"
            f"{shard.where} ORDER BY position",
            (*self.key, run_id, audience_size, *shard.params),
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    def runs(self) -> dict[str, int]:
        """Confirmed deliveries per run id in this slot and channel."""
        rows = self._rows(f"SELECT run_id, COUNT(*) FROM {T} WHERE {KEY} AND status='{SENT}' GROUP BY run_id", self.key)
        return {row[0]: int(row[1]) for row in rows}


class SqliteLedger(DeliveryLedger):
    """A SQLite file per campaign (``<sink_dir>/<campaign>/ledger.sqlite``), for one host: ``make run``, tests."""

    table = SQLITE_TABLE
    begin = "BEGIN IMMEDIATE"

    def __init__(self, path: Path, campaign: str, slot: str, channel: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Sender threads of one task share this connection, one at a time (under the dispatcher's lock).
        connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        super().__init__(connection, campaign, slot, channel)
        connection.execute("PRAGMA page_size=1024")  # a new file only: 1 KB pages, fewer bytes per commit
        wal_mode(connection)
        # A commit is in the WAL (the OS's page cache) when it returns: it survives the process being killed.
        connection.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint (which fsyncs) every 10,000 pages of WAL instead of 1,000: a third of a claim's cost otherwise.
        connection.execute("PRAGMA wal_autocheckpoint=10000")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} (campaign TEXT NOT NULL, slot TEXT NOT NULL, "
            "channel TEXT NOT NULL, recipient TEXT NOT NULL, position INTEGER NOT NULL, run_id TEXT NOT NULL, "
            "sent_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'sent', "
            "PRIMARY KEY (campaign, slot, channel, recipient))"
        )
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({SQLITE_TABLE})")}
        if "status" not in columns:  # a ledger written before pending/sent: every row was a delivery
            connection.execute(f"ALTER TABLE {SQLITE_TABLE} ADD COLUMN status TEXT NOT NULL DEFAULT 'sent'")
        connection.execute(
            f"CREATE INDEX IF NOT EXISTS {SQLITE_TABLE}_by_status "
            f"ON {SQLITE_TABLE} (campaign, slot, channel, status, position)"
        )

    def sql(self, statement: str) -> str:
        """SQLite takes ``?`` placeholders as written."""
        return statement.replace("{t}", self.table)

    def now(self) -> str:
        """An ISO 8601 UTC string."""
        return dt.datetime.now(dt.UTC).isoformat()


class PostgresLedger(DeliveryLedger):
    """Table ``campaign_delivery_ledger`` in a PostgreSQL database shared by every worker host (psycopg2)."""

    table = POSTGRES_TABLE

    def __init__(self, connect_args: dict[str, Any], campaign: str, slot: str, channel: str) -> None:
        import psycopg2

        connection = psycopg2.connect(**{"connect_timeout": 10, "application_name": "campaign_ledger", **connect_args})
        connection.autocommit = True  # transactions are explicit: BEGIN ... COMMIT, one per message
        super().__init__(connection, campaign, slot, channel)
        with self._transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {POSTGRES_TABLE} (campaign TEXT NOT NULL, slot TEXT NOT NULL, "
                "channel TEXT NOT NULL, recipient TEXT NOT NULL, position INTEGER NOT NULL, run_id TEXT NOT NULL, "
                "sent_at TIMESTAMPTZ NOT NULL, status TEXT NOT NULL, PRIMARY KEY (campaign, slot, channel, recipient))"
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {POSTGRES_TABLE}_by_status "
                f"ON {POSTGRES_TABLE} (campaign, slot, channel, status, position)"
            )

    @classmethod
    def from_connection(cls, conn_id: str, campaign: str, slot: str, channel: str) -> PostgresLedger:
        """The ledger in the database of Airflow Connection ``conn_id`` (read with the Task SDK)."""
        from airflow.sdk import BaseHook

        return cls(connect_args(BaseHook.get_connection(conn_id)), campaign, slot, channel)

    def claim(
        self, recipient: Recipient, run_id: str, *, confirm: Iterable[str] = (), release: Iterable[str] = ()
    ) -> bool:
        """``DeliveryLedger.claim`` as one statement: one round trip and one commit per message, not four."""
        now = self.now()
        params = (now, *self.key, list(confirm), *self.key, list(release))
        cursor = self.connection.cursor()
        try:  # autocommit: the statement, its two CTEs included, is one transaction
            cursor.execute(
                self._sql(
                    f"{SETTLE_CTES} INSERT INTO {T} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (*params, *self.key, recipient.id, recipient.position, run_id, now, PENDING),
            )
            return int(cursor.rowcount) == 1
        finally:
            cursor.close()

    def settle(self, confirm: Iterable[str] = (), release: Iterable[str] = ()) -> None:
        """``DeliveryLedger.settle`` as one statement."""
        confirm, release = list(confirm), list(release)
        if confirm or release:
            cursor = self.connection.cursor()
            try:
                cursor.execute(
                    self._sql(f"{SETTLE_CTES} SELECT 1"), (self.now(), *self.key, confirm, *self.key, release)
                )
            finally:
                cursor.close()

    def sql(self, statement: str) -> str:
        """psycopg2 takes ``%s`` placeholders."""
        return statement.replace("%", "%%").replace("?", "%s").replace("{t}", self.table)

    def now(self) -> dt.datetime:
        """An aware UTC datetime (column ``timestamptz``)."""
        return dt.datetime.now(dt.UTC)


LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name")


def connect_args(connection: Any) -> dict[str, Any]:
    """psycopg2 keyword arguments from an Airflow Connection (``postgres``); libpq options come from its extra."""
    conn_type = (connection.conn_type or "").lower()
    if conn_type not in ("postgres", "postgresql"):
        raise ValueError(f"ledger connection {connection.conn_id!r} must be of type postgres, not {conn_type!r}")
    args: dict[str, Any] = {
        "host": connection.host or "localhost",
        "port": int(connection.port or 5432),
        "dbname": connection.schema or "postgres",
        "user": connection.login or None,
        "password": connection.password or None,
    }
    extra = connection.extra_dejson
    args.update({name: extra[name] for name in LIBPQ_EXTRAS if name in extra})
    return {name: value for name, value in args.items() if value is not None}


def open_ledger(campaign: str, slot: str, channel: str, *, sink_dir: Path, conn_id: str = "") -> DeliveryLedger:
    """The ledger of one campaign, slot and channel: in Connection ``conn_id``'s database, else under ``sink_dir``."""
    if conn_id:
        return PostgresLedger.from_connection(conn_id, campaign, slot, channel)
    return SqliteLedger(sink_dir / campaign / "ledger.sqlite", campaign, slot, channel)
