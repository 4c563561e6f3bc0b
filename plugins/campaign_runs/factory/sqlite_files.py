"""The factory's SQLite files (ledger, snapshot, suppression list): opened by several tasks at once."""

from __future__ import annotations

import sqlite3
import time


def wal_mode(connection: sqlite3.Connection, timeout: float = 60.0) -> None:
    """Put the database in WAL mode; tried again while another connection opening it at once holds its lock.

    SQLite answers "database is locked" at once (no busy wait) when two connections switch a new file to WAL
    together: two shard tasks starting the first run of a campaign do.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
