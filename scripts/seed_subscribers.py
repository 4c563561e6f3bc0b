"""The ``subscribers`` table the shipped ``weekly_newsletter`` campaign reads, seeded once with deterministic rows.

``make run`` (scripts/dev.py) seeds ``.airflow/subscribers.sqlite`` and hands its processes the Connection
``subscribers_db`` as ``AIRFLOW_CONN_SUBSCRIBERS_DB``; the tests seed a private copy with this module; the compose
PostgreSQL seeds the same rows (docker/postgres-init/subscribers.psql, compared row by row in tests/deploy).

    python -m scripts.seed_subscribers [PATH]     # default: subscribers.sqlite in the make run home (.airflow/)

A table that already exists is left as it is (edit it freely): seeding is idempotent, never a reset. Delete the
file to start again.

Every row is a function of its number ``n`` (1..3000), so the same rows come out everywhere:

- ``subscriber_id`` ``sub-00001``..., ``email`` ``<first name>.<n>@example.com``, ``first_name``, ``locale``;
- ``opted_in`` false for every 20th subscriber (150 rows: skipped as ``no_consent``);
- ``push_token`` missing for every 3rd subscriber (1,000 rows: skipped on push as ``no_address``);
- ``joined`` between 2024-01-01 and 2025-12-31 (ISO 8601 UTC text in SQLite, ``timestamptz`` in PostgreSQL);
- hygiene: row 2998 repeats row 1's address in other letter case (``duplicate``), row 2999 has an address
  without ``@`` (``invalid_address``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

CONN_ID = "subscribers_db"
CONN_ENV = f"AIRFLOW_CONN_{CONN_ID.upper()}"
FILE_NAME = "subscribers.sqlite"
TABLE = "subscribers"
ROWS = 3000
FIRST_NAMES = (
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas",
    "Karin", "Léo", "Maya", "Nils", "Olga", "Pablo", "Quentin", "Rosa", "Sami", "Tess",
)  # fmt: skip
# The ASCII local part of each first name's addresses.
HANDLES = (
    "alice", "bruno", "chloe", "david", "emma", "farid", "giulia", "hugo", "ines", "jonas",
    "karin", "leo", "maya", "nils", "olga", "pablo", "quentin", "rosa", "sami", "tess",
)  # fmt: skip
LOCALES = ("fr_FR", "de_DE", "en_GB", "es_ES", "it_IT", "nl_NL")
OPTED_OUT_EVERY = 20
NO_PUSH_EVERY = 3
JOINED_FROM = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.UTC)
JOINED_DAYS = 731  # 2024-01-01 .. 2025-12-31
DUPLICATE_ROW, DUPLICATE_ADDRESS = 2998, "Alice.1@Example.com"  # row 1's address, other letter case
INVALID_ROW, INVALID_ADDRESS = 2999, "sami.2999.example.com"
CREATE = f"""CREATE TABLE {TABLE} (
    subscriber_id TEXT PRIMARY KEY,
    email TEXT,
    first_name TEXT NOT NULL,
    locale TEXT NOT NULL,
    opted_in INTEGER NOT NULL,  -- 1 yes, 0 no
    push_token TEXT,            -- NULL: no app installed
    joined TEXT NOT NULL        -- ISO 8601 UTC, e.g. 2024-05-17T09:00:00+00:00: compares as text
)"""


@dataclass(frozen=True)
class Subscriber:
    """One row of the table."""

    subscriber_id: str
    email: str
    first_name: str
    locale: str
    opted_in: bool
    push_token: str | None
    joined: dt.datetime


def subscriber(n: int) -> Subscriber:
    """Row ``n`` (1-based): a pure function of ``n``, mirrored by docker/postgres-init/subscribers.psql."""
    index = (n - 1) % len(FIRST_NAMES)
    email = {DUPLICATE_ROW: DUPLICATE_ADDRESS, INVALID_ROW: INVALID_ADDRESS}.get(n, f"{HANDLES[index]}.{n}@example.com")
    return Subscriber(
        subscriber_id=f"sub-{n:05d}",
        email=email,
        first_name=FIRST_NAMES[index],
        locale=LOCALES[(n - 1) % len(LOCALES)],
        opted_in=n % OPTED_OUT_EVERY != 0,
        push_token=hashlib.md5(f"push-{n}".encode()).hexdigest() if n % NO_PUSH_EVERY else None,
        joined=JOINED_FROM + dt.timedelta(days=n * 37 % JOINED_DAYS),
    )


def subscribers() -> Iterator[Subscriber]:
    """Every row, in ``subscriber_id`` order."""
    return (subscriber(n) for n in range(1, ROWS + 1))


def seed(path: Path) -> tuple[int, bool]:
    """Create ``path``'s ``subscribers`` table with every row unless it exists; (rows in the table, created now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")  # two seeds at once: the second waits, then finds the table
        try:
            exists = connection.execute("SELECT 1 FROM sqlite_master WHERE name=?", (TABLE,)).fetchone()
            if not exists:
                connection.execute(CREATE)
                connection.executemany(
                    f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (*astuple(row)[:4], int(row.opted_in), row.push_token, row.joined.isoformat())
                        for row in subscribers()
                    ),
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        (count,) = connection.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
    finally:
        connection.close()
    return int(count), not exists


def connection_value(path: Path) -> str:
    """The ``AIRFLOW_CONN_SUBSCRIBERS_DB`` value of the SQLite file ``path`` (JSON, as Airflow reads it)."""
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def default_path() -> Path:
    """``subscribers.sqlite`` in the ``make run`` home (``CAMPAIGN_RUNS_HOME``, default ``.airflow/``)."""
    from scripts.dev import config_from_env

    return config_from_env().home / FILE_NAME


def main(argv: Sequence[str] | None = None) -> int:
    """Seed the file and print how to point Airflow at it."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="the SQLite file (default: %(default)s)")
    args = parser.parse_args(argv)
    path = (args.path or default_path()).resolve()
    count, created = seed(path)
    print(f"{path}: table {TABLE}, {count:,} rows ({'created' if created else 'already there, left as it is'})")
    print(f"export {CONN_ENV}='{connection_value(path)}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
