"""A run's audience, frozen: the source's rows written once per slot into the ledger's database, then read in order.

Every channel task, shard, Restart and resend of a slot reads the snapshot, never the source again. Hygiene is
decided while writing: per channel, a row with an invalid or missing address or without consent is skipped with
a reason, and of rows sharing an address (or a recipient id) only the first is sent. A PostgreSQL source going
into a PostgreSQL ledger is copied database to database, cleaned by its own SQL (``snapshot_sql``); any other
source is read and cleaned in Python a chunk at a time (``SnapshotPlan.rows``): the same rows either way.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from campaign_runs.factory.hygiene import (
    ADDRESS_FIELDS,
    CHECK,
    CHECK_NO_CONSENT,
    DUPLICATE,
    SKIP_COLUMNS,
    SnapshotPlan,
    decided,
)
from campaign_runs.factory.snapshot_copy import CHUNK_ROWS, copy_lines, copy_rows
from campaign_runs.factory.snapshot_dedup import scratch_tables, skip_duplicates
from campaign_runs.factory.snapshot_sql import copied
from campaign_runs.factory.sources import SqlRows
from campaign_runs.factory.sqlite_files import wal_mode

SNAPSHOT_TABLE = "campaign_audience_snapshot"  # SQLite: every snapshot of the campaign, by campaign and slot
ROWS_TABLE = "campaign_audience_rows"  # PostgreSQL: a table per snapshot, ``campaign_audience_rows_<snapshot_id>``
META_TABLE = "campaign_audience_snapshot_run"
SNAPSHOT_IDS = "campaign_audience_snapshot_ids"  # PostgreSQL: the sequence numbering snapshots
LOCK = 1129137232  # PostgreSQL advisory lock held while the tables are created or moved to this layout

ROW_COLUMNS = "position, recipient, email, phone, push_token, skip_email, skip_sms, skip_push, fields"
COLUMNS = f"campaign, slot, {ROW_COLUMNS}"
ROW_TYPES = (
    "position INTEGER NOT NULL, recipient TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL, "
    "push_token TEXT NOT NULL, skip_email TEXT, skip_sms TEXT, skip_push TEXT, fields TEXT NOT NULL"
)
KEY = "campaign=? AND slot=?"
NULLABLE = ", ".join(SKIP_COLUMNS.values())
MARK = CHECK.encode()  # in a row of the database's copy: an address for Python to decide


@dataclass(frozen=True)
class SnapshotInfo:
    """What run details show of a snapshot: rows, seconds it took, and whether it was written by this run."""

    rows: int
    seconds: float
    source: str
    reused: bool = False

    def as_xcom(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"rows": self.rows, "seconds": round(self.seconds, 3), "source": self.source, "reused": self.reused}


@dataclass(frozen=True)
class Scope:
    """Where one snapshot's rows are: a table and the condition (with its parameters) that picks them."""

    table: str
    where: str
    params: tuple[Any, ...]


class SnapshotMissing(LookupError):
    """A channel asked for a snapshot that was never written, or was deleted."""


class SnapshotStore:
    """The snapshot tables in the ledger's database: a SQLite file, or PostgreSQL (``connect`` gives psycopg2).

    SQLite keeps every snapshot of the campaign in one table keyed by campaign and slot. PostgreSQL gives each
    snapshot a table of its own, numbered in ``META_TABLE``: a snapshot is written into a new table in one
    transaction, indexed once it is whole, cleaned by scanning only its rows, and dropped at once.
    """

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres
        self.connect_args: dict[str, Any] | None = None  # PostgreSQL: how to open more connections to its database
        self._create()

    @classmethod
    def sqlite(cls, path: Path) -> SnapshotStore:
        """The store in SQLite file ``path`` (the campaign's ledger file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        wal_mode(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        # SQLite's LOWER() folds ASCII only; PostgreSQL's and the suppression list's (str.lower) fold Unicode too.
        connection.create_function("LOWER", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True)
        return cls(connection, postgres=False)

    @classmethod
    def postgres_connection(cls, connect_args: dict[str, Any]) -> SnapshotStore:
        """The store in the PostgreSQL database of the ledger."""
        store = cls(cls.postgres_connect(connect_args), postgres=True)
        store.connect_args = connect_args
        return store

    @staticmethod
    def postgres_connect(connect_args: dict[str, Any]) -> Any:
        """A psycopg2 connection (autocommit) to the PostgreSQL database of the ledger."""
        import psycopg2

        connection = psycopg2.connect(
            **{"connect_timeout": 10, "application_name": "campaign_audience", **connect_args}
        )
        connection.autocommit = True
        return connection

    def close(self) -> None:
        """Close the database connection."""
        self.connection.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(self, statement: str) -> str:
        """``statement`` with ``?`` placeholders in this backend's style."""
        return statement.replace("%", "%%").replace("?", "%s") if self.postgres else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) and return its rows."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.sql(statement), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def _create(self) -> None:
        meta = (
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} (campaign TEXT NOT NULL, slot TEXT NOT NULL, "
            "source TEXT NOT NULL, run_id TEXT NOT NULL, row_count INTEGER NOT NULL, seconds REAL NOT NULL, "
            "complete INTEGER NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (campaign, slot))"
        )
        if not self.postgres:
            self.execute(
                f"CREATE TABLE IF NOT EXISTS {SNAPSHOT_TABLE} (campaign TEXT NOT NULL, slot TEXT NOT NULL, "
                f"{ROW_TYPES}, PRIMARY KEY (campaign, slot, position))"
            )
            self.execute(meta)
            return
        self.execute(f"SELECT pg_advisory_lock({LOCK})")
        try:
            self.execute(meta)
            self.execute(f"ALTER TABLE {META_TABLE} ADD COLUMN IF NOT EXISTS snapshot_id INTEGER")
            self.execute(f"CREATE SEQUENCE IF NOT EXISTS {SNAPSHOT_IDS}")
            self._move_shared_table()
        finally:
            self.execute(f"SELECT pg_advisory_unlock({LOCK})")

    def _move_shared_table(self) -> None:
        """PostgreSQL ledgers written by 0.7.0 and earlier kept every snapshot in one table: give each one its own."""
        if not self.execute("SELECT to_regclass(?) IS NOT NULL", (SNAPSHOT_TABLE,))[0][0]:
            return
        for campaign, slot in self.execute(f"SELECT campaign, slot FROM {META_TABLE} WHERE snapshot_id IS NULL"):
            snapshot_id = int(self.execute(f"SELECT nextval('{SNAPSHOT_IDS}')")[0][0])
            table = f"{ROWS_TABLE}_{snapshot_id}"
            self.execute(f"CREATE TABLE {table} ({ROW_TYPES}, PRIMARY KEY (position))")
            self.execute(
                f"INSERT INTO {table} ({ROW_COLUMNS}) SELECT {ROW_COLUMNS} FROM {SNAPSHOT_TABLE} WHERE {KEY}",
                (campaign, slot),
            )
            self.execute(f"UPDATE {META_TABLE} SET snapshot_id=? WHERE {KEY}", (snapshot_id, campaign, slot))
        self.execute(f"DROP TABLE {SNAPSHOT_TABLE}")

    def info(self, campaign: str, slot: str) -> SnapshotInfo | None:
        """The slot's complete snapshot, if one was written."""
        rows = self.execute(
            f"SELECT row_count, seconds, source FROM {META_TABLE} WHERE {KEY} AND complete=1", (campaign, slot)
        )
        return SnapshotInfo(int(rows[0][0]), float(rows[0][1]), str(rows[0][2]), reused=True) if rows else None

    def scope(self, campaign: str, slot: str) -> Scope:
        """Where the slot's complete snapshot is; ``SnapshotMissing`` when there is none."""
        if not self.postgres:
            if self.info(campaign, slot) is None:
                raise SnapshotMissing(f"campaign {campaign!r} has no audience snapshot of slot {slot}")
            return Scope(SNAPSHOT_TABLE, KEY, (campaign, slot))
        rows = self.execute(f"SELECT snapshot_id FROM {META_TABLE} WHERE {KEY} AND complete=1", (campaign, slot))
        if not rows or rows[0][0] is None:
            raise SnapshotMissing(f"campaign {campaign!r} has no audience snapshot of slot {slot}")
        return Scope(f"{ROWS_TABLE}_{int(rows[0][0])}", "TRUE", ())

    def freeze(
        self, campaign: str, slot: str, run_id: str, source: str, plan: SnapshotPlan, rows: Iterable[dict[str, Any]]
    ) -> SnapshotInfo:
        """The slot's snapshot: the one already written, else ``rows`` written now as they come, then de-duplicated."""
        if (existing := self.info(campaign, slot)) is not None:
            return existing
        started = time.monotonic()
        self.drop(campaign, slot)  # a snapshot cut short (a killed build_audience): nobody was sent to from it
        scope = self._begin(campaign, slot, run_id, source)
        try:
            count = self._write(scope, (campaign, slot), plan, rows)
            self._skip_duplicates(scope, plan.channels)
        except BaseException:
            self.drop(campaign, slot)  # a killed process leaves its begun record: the next freeze drops it
            raise
        seconds = time.monotonic() - started
        self.execute(
            f"UPDATE {META_TABLE} SET row_count=?, seconds=?, complete=1 WHERE {KEY}", (count, seconds, campaign, slot)
        )
        return SnapshotInfo(count, seconds, source)

    def _begin(self, campaign: str, slot: str, run_id: str, source: str) -> Scope:
        """Record the slot's snapshot as begun (not complete); where its rows go."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        columns, values = (
            "campaign, slot, source, run_id, row_count, seconds, complete, created_at",
            "?, ?, ?, ?, 0, 0, 0, ?",
        )
        params: tuple[Any, ...] = (campaign, slot, source, run_id, now)
        if not self.postgres:
            self.execute(f"INSERT INTO {META_TABLE} ({columns}) VALUES ({values})", params)
            return Scope(SNAPSHOT_TABLE, KEY, (campaign, slot))
        snapshot_id = int(self.execute(f"SELECT nextval('{SNAPSHOT_IDS}')")[0][0])
        self.execute(f"INSERT INTO {META_TABLE} ({columns}, snapshot_id) VALUES ({values}, ?)", (*params, snapshot_id))
        return Scope(f"{ROWS_TABLE}_{snapshot_id}", "TRUE", ())

    def _write(self, scope: Scope, key: tuple[str, str], plan: SnapshotPlan, rows: Iterable[dict[str, Any]]) -> int:
        """Write the snapshot rows of ``rows``; the number written (duplicates still to skip).

        A PostgreSQL source into a PostgreSQL ledger: copied database to database (``snapshot_sql``), then the
        addresses it left to Python decided. Any other: rows read a chunk at a time (SQL) or one by one (files).
        PostgreSQL: the snapshot's table is created and filled in one transaction (``COPY ... FREEZE``: a snapshot
        cut short leaves no table), then given its primary key (here, or while its duplicates are sought). SQLite:
        one transaction per chunk, begun once the chunk is read, so the source is never read while it is locked.
        """
        chunks = rows.chunks() if isinstance(rows, SqlRows) else ((tuple(raw), [tuple(raw.values())]) for raw in rows)
        if not self.postgres:
            return self._insert_chunks((*key, *row) for row in plan.rows_of(chunks))
        self.execute("BEGIN")
        try:
            self.execute(f"CREATE TABLE {scope.table} ({ROW_TYPES})")
            count, marked = self._copy(scope.table, plan, rows, chunks)
            self.execute("COMMIT")
        except BaseException:
            with suppress(Exception):  # the transaction may be gone with its connection: the first error stands
                self.execute("ROLLBACK")
            raise
        if marked:  # its updates find rows by position: the key first (else built while duplicates are sought)
            self.execute(f"ALTER TABLE {scope.table} ADD PRIMARY KEY (position)")
            self._decide_marked(scope)
        return count

    def _copy(self, table: str, plan: SnapshotPlan, rows: Iterable[Any], chunks: Iterable[Any]) -> tuple[int, bool]:
        """PostgreSQL: the rows into new ``table``; rows written, whether one holds an address left to Python."""
        statement = f"COPY {table} ({ROW_COLUMNS}) FROM STDIN"
        if isinstance(rows, SqlRows) and self.connection.encoding == "UTF8":
            with copied(rows.source, rows.values, plan) as lines:
                if lines is not None:
                    return copy_lines(self.connection, f"{statement} (FORMAT binary, FREEZE)", lines, MARK)
        options = f"(FORMAT csv, FORCE_NULL ({NULLABLE}), FREEZE)"
        return copy_rows(self.connection, f"{statement} {options}", iter(plan.rows_of(chunks))), False

    def _insert_chunks(self, iterator: Iterator[tuple[Any, ...]]) -> int:
        """SQLite: one transaction per chunk; the number of rows written."""
        count = 0
        while chunk := list(islice(iterator, CHUNK_ROWS)):
            marks = ", ".join("?" * len(chunk[0]))
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                self.connection.executemany(f"INSERT INTO {SNAPSHOT_TABLE} ({COLUMNS}) VALUES ({marks})", chunk)
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")
            count += len(chunk)
        return count

    def _decide_marked(self, scope: Scope) -> None:
        """Decide the addresses the database left to Python (non-ASCII ones), ``CHUNK_ROWS`` at a time."""
        marks = (CHECK, CHECK_NO_CONSENT)
        after = -1
        while rows := self.execute(
            f"SELECT position, email, push_token, skip_email, skip_push FROM {scope.table} WHERE {scope.where} "
            "AND position > ? AND (skip_email IN (?, ?) OR skip_push IN (?, ?)) ORDER BY position LIMIT ?",
            (*scope.params, after, *marks, *marks, CHUNK_ROWS),
        ):
            updates = [
                (decided("email", email, email_skip), decided("push", push, push_skip), *scope.params, position)
                for position, email, push, email_skip, push_skip in rows
            ]
            cursor = self.connection.cursor()
            try:
                statement = f"UPDATE {scope.table} SET skip_email=?, skip_push=? WHERE {scope.where} AND position=?"
                cursor.executemany(self.sql(statement), updates)
            finally:
                cursor.close()
            after = int(rows[-1][0])

    def _skip_duplicates(self, scope: Scope, channels: Sequence[str]) -> None:
        """Of rows sharing a recipient id, or an address on a channel, every one but the first is skipped.

        PostgreSQL: ``snapshot_dedup`` (the sorts at once, on connections of their own). SQLite: each pass ranks the
        snapshot once (a materialized CTE), then updates the rows it found by their position.
        """
        if self.postgres:
            args = self.connect_args
            connect = (lambda: self.postgres_connect(args)) if args else None
            keyed = self.execute("SELECT EXISTS (SELECT FROM pg_index WHERE indrelid = ?::regclass)", (scope.table,))
            skip_duplicates(self.execute, connect, scope.table, channels, keyed=bool(keyed[0][0]))
            return
        skip_all = ", ".join(f"{column}=COALESCE({column}, '{DUPLICATE}')" for column in SKIP_COLUMNS.values())
        passes = [("recipient", "", skip_all)]
        for channel in (channel for channel in channels if channel in SKIP_COLUMNS):
            column, address = SKIP_COLUMNS[channel], ADDRESS_FIELDS[channel]
            by = f"LOWER({address})" if channel == "email" else address
            passes.append((by, f" AND {column} IS NULL", f"{column}='{DUPLICATE}'"))
        for by, where, update in passes:
            self.execute(
                "WITH duplicate AS MATERIALIZED (SELECT position FROM (SELECT position, ROW_NUMBER() OVER "
                f"(PARTITION BY {by} ORDER BY position) AS n FROM {scope.table} WHERE {scope.where}{where}) "
                f"ranked WHERE n > 1) UPDATE {scope.table} SET {update} WHERE {scope.where} AND position IN "
                "(SELECT position FROM duplicate)",
                (*scope.params, *scope.params),
            )

    def drop(self, campaign: str, slot: str | None = None) -> int:
        """Delete the snapshot of one slot (or every slot of ``campaign``), complete or not; the rows deleted."""
        where, params = (KEY, (campaign, slot)) if slot is not None else ("campaign=?", (campaign,))
        if not self.postgres:
            self.execute(f"DELETE FROM {META_TABLE} WHERE {where}", params)
            cursor = self.connection.cursor()
            try:
                cursor.execute(f"DELETE FROM {SNAPSHOT_TABLE} WHERE {where}", params)
                return max(int(cursor.rowcount), 0)
            finally:
                cursor.close()
        deleted = 0
        for (snapshot_id,) in self.execute(f"SELECT snapshot_id FROM {META_TABLE} WHERE {where}", params):
            table = f"{ROWS_TABLE}_{int(snapshot_id)}"
            if self.execute("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0]:
                deleted += int(self.execute(f"SELECT COUNT(*) FROM {table}")[0][0])
                self.execute(f"DROP TABLE {table}")
            self.execute(f"DROP TABLE IF EXISTS {scratch_tables(table)}")  # left by a killed de-duplication
        self.execute(f"DELETE FROM {META_TABLE} WHERE {where}", params)
        return deleted

    def slots(self, campaign: str) -> list[tuple[str, str]]:
        """(slot, run id that wrote it) of every snapshot of ``campaign``."""
        return [
            (str(r[0]), str(r[1]))
            for r in self.execute(f"SELECT slot, run_id FROM {META_TABLE} WHERE campaign=?", (campaign,))
        ]


def open_snapshots(campaign: str, *, sink_dir: Path, conn_id: str = "") -> SnapshotStore:
    """The snapshot store beside the delivery ledger: Connection ``conn_id``'s database, else the campaign's file."""
    if conn_id:
        from airflow.sdk import BaseHook

        from campaign_runs.factory.ledger import connect_args

        return SnapshotStore.postgres_connection(connect_args(BaseHook.get_connection(conn_id)))
    return SnapshotStore.sqlite(sink_dir / campaign / "ledger.sqlite")
