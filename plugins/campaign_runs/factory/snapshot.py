"""A run's audience, frozen: the source's rows written once per slot into the ledger's database, then read in order.

Every channel task, shard, Restart and resend of a slot reads the snapshot, never the source again. Hygiene is
decided while writing: per channel, a row with an invalid or missing address or without consent is skipped with
a reason, and of rows sharing an address (or a recipient id) only the first is sent. A PostgreSQL source going
into a PostgreSQL ledger is copied database to database, cleaned by its own SQL (``snapshot_sql``); any other
source is read and cleaned in Python a chunk at a time (``SnapshotPlan.rows``): the same rows either way.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from campaign_runs.factory.audience import WHOLE, Recipient, Shard
from campaign_runs.factory.hygiene import (
    ADDRESS_FIELDS,
    CHECK,
    CHECK_NO_CONSENT,
    DUPLICATE,
    SKIP_COLUMNS,
    SnapshotPlan,
    decided,
)
from campaign_runs.factory.snapshot_sql import copied
from campaign_runs.factory.sources import SqlRows
from campaign_runs.factory.sqlite_files import wal_mode

SNAPSHOT_TABLE = "campaign_audience_snapshot"
META_TABLE = "campaign_audience_snapshot_run"
CHUNK_ROWS = 5000

COLUMNS = "campaign, slot, position, recipient, email, phone, push_token, skip_email, skip_sms, skip_push, fields"
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


class SnapshotStore:
    """The snapshot tables in the ledger's database: a SQLite file, or PostgreSQL (``connect`` gives psycopg2)."""

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres
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
        import psycopg2

        connection = psycopg2.connect(
            **{"connect_timeout": 10, "application_name": "campaign_audience", **connect_args}
        )
        connection.autocommit = True
        return cls(connection, postgres=True)

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
        text = "TEXT"
        lock = "SELECT pg_advisory_lock(1129137232)" if self.postgres else None
        if lock:
            self.execute(lock)
        try:
            self.execute(
                f"CREATE TABLE IF NOT EXISTS {SNAPSHOT_TABLE} (campaign {text} NOT NULL, slot {text} NOT NULL, "
                f"position INTEGER NOT NULL, recipient {text} NOT NULL, email {text} NOT NULL, phone {text} NOT NULL, "
                f"push_token {text} NOT NULL, skip_email {text}, skip_sms {text}, skip_push {text}, "
                f"fields {text} NOT NULL, PRIMARY KEY (campaign, slot, position))"
            )
            self.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} (campaign {text} NOT NULL, slot {text} NOT NULL, "
                f"source {text} NOT NULL, run_id {text} NOT NULL, row_count INTEGER NOT NULL, seconds REAL NOT NULL, "
                f"complete INTEGER NOT NULL, created_at {text} NOT NULL, PRIMARY KEY (campaign, slot))"
            )
        finally:
            if lock:
                self.execute("SELECT pg_advisory_unlock(1129137232)")

    def info(self, campaign: str, slot: str) -> SnapshotInfo | None:
        """The slot's complete snapshot, if one was written."""
        rows = self.execute(
            f"SELECT row_count, seconds, source FROM {META_TABLE} WHERE {KEY} AND complete=1", (campaign, slot)
        )
        return SnapshotInfo(int(rows[0][0]), float(rows[0][1]), str(rows[0][2]), reused=True) if rows else None

    def freeze(
        self, campaign: str, slot: str, run_id: str, source: str, plan: SnapshotPlan, rows: Iterable[dict[str, Any]]
    ) -> SnapshotInfo:
        """The slot's snapshot: the one already written, else ``rows`` written now as they come, then de-duplicated."""
        if (existing := self.info(campaign, slot)) is not None:
            return existing
        started = time.monotonic()
        self.drop(campaign, slot)  # a snapshot cut short (a killed build_audience): nobody was sent to from it
        count = self._write(campaign, slot, plan, rows)
        self._skip_duplicates(campaign, slot, plan.channels)
        seconds = time.monotonic() - started
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.execute(
            f"INSERT INTO {META_TABLE} (campaign, slot, source, run_id, row_count, seconds, complete, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            (campaign, slot, source, run_id, count, seconds, now),
        )
        return SnapshotInfo(count, seconds, source)

    def _write(self, campaign: str, slot: str, plan: SnapshotPlan, rows: Iterable[dict[str, Any]]) -> int:
        """Write the snapshot rows of ``rows``; the number written (duplicates still to skip).

        A PostgreSQL source into a PostgreSQL ledger: copied database to database (``snapshot_sql``), then the
        addresses it left to Python decided. Any other: rows read a chunk at a time (SQL) or one by one (files).
        """
        if self.postgres and isinstance(rows, SqlRows) and self.connection.encoding == "UTF8":
            with copied(rows.source, rows.values, plan, (campaign, slot)) as lines:
                if lines is not None:
                    count, marked = self._copy_lines(lines)
                    if marked:
                        self._decide_marked(campaign, slot)
                    return count
        chunks = rows.chunks() if isinstance(rows, SqlRows) else ((tuple(raw), [tuple(raw.values())]) for raw in rows)
        return self._insert((campaign, slot, *row) for row in plan.rows_of(chunks))

    def _insert(self, rows: Iterable[tuple[Any, ...]]) -> int:
        """Write snapshot ``rows`` as they are produced, ``CHUNK_ROWS`` at a time; the number written.

        PostgreSQL: one ``COPY`` for the whole snapshot, fed chunk by chunk while the rows are read, so the server
        stores a chunk while the next one is read and cleaned (and a snapshot cut short leaves no row). The first
        error of ``rows`` (the source's) is raised as it is, not as the COPY's. SQLite: one transaction per chunk,
        begun once the chunk is read, so the source is never read while the database is locked.
        """
        iterator = iter(rows)
        return self._copy(iterator) if self.postgres else self._insert_chunks(iterator)

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

    def _copy(self, iterator: Iterator[tuple[Any, ...]]) -> int:
        """PostgreSQL: one ``COPY`` (CSV) fed a chunk at a time; the number of rows written."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)

        def read() -> str:
            chunk = list(islice(iterator, CHUNK_ROWS))
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(chunk)
            return buffer.getvalue()

        return self._copy_from(f"WITH (FORMAT csv, FORCE_NULL ({NULLABLE}))", read)

    def _copy_lines(self, lines: Iterator[bytes]) -> tuple[int, bool]:
        """PostgreSQL: one ``COPY`` of snapshot rows in binary; the rows written, whether one holds a mark."""
        marked = [False]

        def read() -> bytes:
            data = b"".join(islice(lines, CHUNK_ROWS))
            marked[0] = marked[0] or MARK in data
            return data

        return self._copy_from("(FORMAT binary)", read), marked[0]

    def _copy_from(self, options: str, chunk: Callable[[], str | bytes]) -> int:
        """``COPY`` into the snapshot table what ``chunk`` gives, until it gives nothing; the number of rows.

        The first error of ``chunk`` (the source's) is raised as it is, not as the COPY's.
        """
        from types import SimpleNamespace

        failure: list[BaseException] = []

        def read(size: int = -1) -> str | bytes:  # psycopg2 asks for more until it gets ""
            try:
                return chunk()
            except BaseException as error:
                failure.append(error)
                raise

        cursor = self.connection.cursor()
        try:
            cursor.copy_expert(f"COPY {SNAPSHOT_TABLE} ({COLUMNS}) FROM STDIN {options}", SimpleNamespace(read=read))
            return max(int(cursor.rowcount), 0)
        except Exception:
            if failure:
                raise failure[0] from None
            raise
        finally:
            cursor.close()

    def _decide_marked(self, campaign: str, slot: str) -> None:
        """Decide the addresses the database left to Python (non-ASCII ones), ``CHUNK_ROWS`` at a time."""
        marks = (CHECK, CHECK_NO_CONSENT)
        after = -1
        while rows := self.execute(
            f"SELECT position, email, push_token, skip_email, skip_push FROM {SNAPSHOT_TABLE} WHERE {KEY} "
            "AND position > ? AND (skip_email IN (?, ?) OR skip_push IN (?, ?)) ORDER BY position LIMIT ?",
            (campaign, slot, after, *marks, *marks, CHUNK_ROWS),
        ):
            updates = [
                (decided("email", email, email_skip), decided("push", push, push_skip), campaign, slot, position)
                for position, email, push, email_skip, push_skip in rows
            ]
            cursor = self.connection.cursor()
            try:
                statement = f"UPDATE {SNAPSHOT_TABLE} SET skip_email=?, skip_push=? WHERE {KEY} AND position=?"
                cursor.executemany(self.sql(statement), updates)
            finally:
                cursor.close()
            after = int(rows[-1][0])

    def _skip_duplicates(self, campaign: str, slot: str, channels: Sequence[str]) -> None:
        """Of rows sharing a recipient id, or an address on a channel, every one but the first is skipped.

        Each pass ranks the slot once (a materialized CTE), then updates the rows it found by their position. The
        statistics never know the slot just written: a plan ranking it inside a nested loop re-ranked it once per
        row (two minutes for 11,000 rows). PostgreSQL sorts the keys in the "C" collation: the same groups as any
        deterministic collation, found sooner.
        """
        skip_all = ", ".join(f"{column}=COALESCE({column}, '{DUPLICATE}')" for column in SKIP_COLUMNS.values())
        passes = [("recipient", "", skip_all)]
        for channel in (channel for channel in channels if channel in SKIP_COLUMNS):
            column, address = SKIP_COLUMNS[channel], ADDRESS_FIELDS[channel]
            by = f"LOWER({address})" if channel == "email" else address
            passes.append((by, f" AND {column} IS NULL", f"{column}='{DUPLICATE}'"))
        collate, found = (
            (' COLLATE "C"', "= ANY(ARRAY(SELECT position FROM duplicate))")
            if self.postgres
            else ("", "IN (SELECT position FROM duplicate)")
        )
        for by, where, update in passes:
            self.execute(
                "WITH duplicate AS MATERIALIZED (SELECT position FROM (SELECT position, ROW_NUMBER() OVER "
                f"(PARTITION BY {by}{collate} ORDER BY position) AS n FROM {SNAPSHOT_TABLE} WHERE {KEY}{where}) "
                f"ranked WHERE n > 1) UPDATE {SNAPSHOT_TABLE} SET {update} WHERE {KEY} AND position {found}",
                (campaign, slot, campaign, slot),
            )

    def drop(self, campaign: str, slot: str | None = None) -> int:
        """Delete the snapshot of one slot (or every slot of ``campaign``); the rows deleted."""
        where, params = (KEY, (campaign, slot)) if slot is not None else ("campaign=?", (campaign,))
        self.execute(f"DELETE FROM {META_TABLE} WHERE {where}", params)
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.sql(f"DELETE FROM {SNAPSHOT_TABLE} WHERE {where}"), params)
            return max(int(cursor.rowcount), 0)
        finally:
            cursor.close()

    def slots(self, campaign: str) -> list[tuple[str, str]]:
        """(slot, run id that wrote it) of every snapshot of ``campaign``."""
        return [
            (str(r[0]), str(r[1]))
            for r in self.execute(f"SELECT slot, run_id FROM {META_TABLE} WHERE campaign=?", (campaign,))
        ]


@dataclass
class SnapshotAudience:
    """One channel's view of a slot's snapshot: the rows it sends to, in position order, and the rows it skips."""

    store: SnapshotStore
    campaign: str
    slot: str
    channel: str
    size: int

    @property
    def skip_column(self) -> str:
        return SKIP_COLUMNS.get(self.channel, "NULL")

    def skipped(self, shard: Shard = WHOLE) -> dict[str, int]:
        """Rows of ``shard`` this channel skips, by reason."""
        rows = self.store.execute(
            f"SELECT {self.skip_column}, COUNT(*) FROM {SNAPSHOT_TABLE} WHERE {KEY} AND {self.skip_column} IS NOT NULL"
            f"{shard.where} GROUP BY {self.skip_column}",
            (self.campaign, self.slot, *shard.params),
        )
        return {str(reason): int(count) for reason, count in rows}

    def eligible(self, shard: Shard = WHOLE) -> int:
        """Rows of ``shard`` this channel sends to."""
        return shard.size(self.size) - sum(self.skipped(shard).values())

    def batches(self, batch_size: int, shard: Shard = WHOLE) -> Iterator[list[Recipient]]:
        """Consecutive batches of the rows this channel sends to, read ``batch_size`` at a time (keyset paging)."""
        after = -1
        while True:
            rows = self.store.execute(
                f"SELECT position, recipient, email, phone, push_token, fields FROM {SNAPSHOT_TABLE} WHERE {KEY} "
                f"AND {self.skip_column} IS NULL AND position > ?{shard.where} ORDER BY position LIMIT ?",
                (self.campaign, self.slot, after, *shard.params, batch_size),
            )
            if not rows:
                return
            yield [_recipient(row) for row in rows]
            after = int(rows[-1][0])

    def at(self, positions: Sequence[int]) -> list[Recipient]:
        """The recipients at ``positions`` (in that order)."""
        found: dict[int, Recipient] = {}
        for start in range(0, len(positions), 500):
            chunk = list(positions[start : start + 500])
            rows = self.store.execute(
                f"SELECT position, recipient, email, phone, push_token, fields FROM {SNAPSHOT_TABLE} WHERE {KEY} "
                f"AND position IN ({', '.join('?' * len(chunk))})",
                (self.campaign, self.slot, *chunk),
            )
            found.update((int(row[0]), _recipient(row)) for row in rows)
        return [found[p] for p in positions if p in found]


def _recipient(row: Sequence[Any]) -> Recipient:
    return Recipient(
        id=str(row[1]), position=int(row[0]), email=row[2], phone=row[3], push_token=row[4], values=json.loads(row[5])
    )


def open_snapshots(campaign: str, *, sink_dir: Path, conn_id: str = "") -> SnapshotStore:
    """The snapshot store beside the delivery ledger: Connection ``conn_id``'s database, else the campaign's file."""
    if conn_id:
        from airflow.sdk import BaseHook

        from campaign_runs.factory.ledger import connect_args

        return SnapshotStore.postgres_connection(connect_args(BaseHook.get_connection(conn_id)))
    return SnapshotStore.sqlite(sink_dir / campaign / "ledger.sqlite")
