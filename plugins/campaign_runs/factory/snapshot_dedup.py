"""Duplicates in a PostgreSQL snapshot's table, found by sorts that run at the same time on connections of their own.

Of rows sharing a recipient id, every one but the first is skipped on every channel; then, of the rows a channel
still sends to, those sharing an address with an earlier one. Each of these is a sort of the whole snapshot, and
the later ones depend on the first. So each sort runs on its own connection, all at once (the copy is over: the
machine's other cores are idle), and writes what it found to a scratch table: the recipient ids' duplicates, and
per channel the rows of addresses held more than once (before the id's duplicates are taken out: a group only
shrinks). The store's connection then ranks those few rows again without the id's duplicates, and updates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from campaign_runs.factory.hygiene import ADDRESS_FIELDS, DUPLICATE, SKIP_COLUMNS

SCRATCH = ("id", *SKIP_COLUMNS)  # suffixes of the scratch tables: ``<table>_dup_<suffix>``


def scratch_tables(table: str) -> str:
    """The names of ``table``'s scratch tables, for ``DROP TABLE IF EXISTS``."""
    return ", ".join(f"{table}_dup_{suffix}" for suffix in SCRATCH)


def skip_duplicates(
    execute: Callable[[str], object],
    connect: Callable[[], Any] | None,
    table: str,
    channels: Sequence[str],
    *,
    keyed: bool = True,
) -> None:
    """Mark the duplicates of ``table`` (``execute`` runs on the store's connection; ``connect`` opens another).

    Not ``keyed`` yet: the primary key's index is built meanwhile (its lock lets the sorts read the table).
    """
    channels = [channel for channel in SKIP_COLUMNS if channel in channels]
    collate = ' COLLATE "C"'  # the same groups as any deterministic collation, found sooner
    found = [
        f"CREATE UNLOGGED TABLE {table}_dup_id AS SELECT position FROM (SELECT position, ROW_NUMBER() OVER "
        f"(PARTITION BY recipient{collate} ORDER BY position) AS n FROM {table}) ranked WHERE n > 1"
    ]
    for channel in channels:
        column, by = SKIP_COLUMNS[channel], _key(channel)
        found.append(
            f"CREATE UNLOGGED TABLE {table}_dup_{channel} AS SELECT position, k FROM (SELECT position, {by}{collate} "
            f"AS k, COUNT(*) OVER (PARTITION BY {by}{collate}) AS n FROM {table} WHERE {column} IS NULL) grouped "
            "WHERE n > 1"
        )
    if not keyed:
        found.append(f"CREATE UNIQUE INDEX {table}_pkey ON {table} (position)")
    execute(f"DROP TABLE IF EXISTS {scratch_tables(table)}")
    try:
        _run_together(execute, connect, found)
        if not keyed:
            execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX {table}_pkey")
        skip_all = ", ".join(f"{column}=COALESCE({column}, '{DUPLICATE}')" for column in SKIP_COLUMNS.values())
        execute(f"UPDATE {table} SET {skip_all} WHERE position = ANY(ARRAY(SELECT position FROM {table}_dup_id))")
        for channel in channels:
            execute(
                f"UPDATE {table} SET {SKIP_COLUMNS[channel]}='{DUPLICATE}' WHERE position = ANY(ARRAY("
                "SELECT position FROM (SELECT position, ROW_NUMBER() OVER (PARTITION BY k ORDER BY position) AS n "
                f"FROM {table}_dup_{channel} c WHERE NOT EXISTS (SELECT FROM {table}_dup_id d WHERE d.position = "
                "c.position)) ranked WHERE n > 1))"  # an anti-join: NOT IN would scan the ids' list once per row
            )
    finally:
        execute(f"DROP TABLE IF EXISTS {scratch_tables(table)}")


def _key(channel: str) -> str:
    """What makes two addresses of ``channel`` the same: an email's letter case does not count."""
    address = ADDRESS_FIELDS[channel]
    return f"LOWER({address})" if channel == "email" else address


def _run_together(execute: Callable[[str], object], connect: Callable[[], Any] | None, statements: list[str]) -> None:
    """The first of ``statements`` on the store's connection, each other on a connection of its own, all at once.

    Without ``connect`` (or when a connection cannot be opened) they run one after the other on the store's.
    """
    failures: list[BaseException] = []
    threads = []
    for statement in statements[1:]:
        try:
            if connect is None:
                break
            connection = connect()
        except Exception:
            break
        thread = threading.Thread(target=_run, args=(connection, statement, failures), name="campaign-audience-dedup")
        thread.start()
        threads.append(thread)
    try:
        for statement in [statements[0], *statements[1 + len(threads) :]]:
            execute(statement)
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]


def _run(connection: Any, statement: str, failures: list[BaseException]) -> None:
    """Run ``statement`` on ``connection`` (autocommit), then close it; an error goes to ``failures``."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    except BaseException as error:
        failures.append(error)
    finally:
        connection.close()
