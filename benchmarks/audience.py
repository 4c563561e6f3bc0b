"""Audience snapshot: a SQL audience frozen into the run's snapshot vs PostgreSQL copying the same rows itself.

Run with ``python -m benchmarks.audience`` from the repository root (``--rows N``, default 1,000,000). It creates
a private database on the PostgreSQL server of ``CAMPAIGN_RUNS_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432``), dropped at the end, with a ``subscribers`` table of N rows (every 20th
opted out, every 3rd without a push token, every 1,000th repeating the address before it in other letter case),
and measures, one after the other in the same run, the same query (the shipped weekly_newsletter's, ``ORDER BY
subscriber_id``) over the same rows:

- the reference: ``COPY (query) TO STDOUT`` piped into ``COPY snapshot_copy FROM STDIN`` (psycopg2 ``copy_expert``
  on two connections joined by an OS pipe): the database moving the rows, no Python per row;
- ours, as ``build_audience`` runs it, in a child process of its own: ``SqlSource(...).rows(...)`` through the
  Connection ``bench_audience`` (``AIRFLOW_CONN_BENCH_AUDIENCE``: the common-sql hook's engine) into
  ``SnapshotStore.postgres_connection(...).freeze(...)``: a PostgreSQL source into a PostgreSQL ledger is copied
  database to database (``snapshot_sql``: ``COPY (SELECT <the hygiene in SQL> FROM (query)) TO STDOUT`` in the
  source's read-only session piped into ``COPY ... FROM STDIN`` of the ledger), then de-duplicated in SQL;
- the reference again;
- ours streamed (``--streamed``: ``snapshot_sql.ENABLED`` off), the way every other source is read (SQLite,
  MySQL, files): a server-side cursor, each chunk of rows checked, mapped and cleaned in Python, written with COPY;
- the reference a third time; each ratio is over the mean of the reference runs.

Then the peak RSS (``VmHWM``) of a child doing only ours at 100,000 rows, next to the one at N rows (both ways):
the growth is what the audience's size costs in memory. Goals: ours at least 0.5x the reference's rows/s, growth
<= 50 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.report import recorded

REPO = Path(__file__).resolve().parent.parent
CONN_ID = "bench_audience"
CAMPAIGN = "bench_audience"
SMALL = 100_000
RATIO_GOAL, GROWTH_GOAL_MB = 0.5, 50.0
LOGICAL_DATE = "2026-03-09T08:00:00+00:00"
QUERY = (
    "SELECT subscriber_id, email, first_name, opted_in, push_token FROM subscribers "
    "WHERE joined <= COALESCE(:logical_date, joined) ORDER BY subscriber_id"
)
COPY_COLUMNS = "subscriber_id text, email text, first_name text, opted_in boolean, push_token text"
CREATE = """
CREATE TABLE subscribers (subscriber_id text PRIMARY KEY, email text, first_name text NOT NULL,
    opted_in boolean NOT NULL, push_token text, joined timestamptz NOT NULL);
INSERT INTO subscribers
SELECT format('sub-%s', lpad(n::text, 8, '0')),
    CASE WHEN n % 1000 = 7 THEN format('User.%s@Example.com', n - 1) ELSE format('user.%s@example.com', n) END,
    (ARRAY['Alice', 'Bruno', 'Chloé', 'David', 'Emma', 'Farid', 'Giulia', 'Hugo', 'Inès', 'Jonas'])[1 + n % 10],
    n % 20 <> 0,
    CASE WHEN n % 3 <> 0 THEN md5(format('push-%s', n)) END,
    timestamptz '2024-01-01 09:00:00+00' + (n % 731) * interval '1 day'
FROM generate_series(1, {rows}) AS n;
ANALYZE subscribers;
"""


@dataclass(frozen=True)
class Result:
    """One measured way of moving the rows."""

    label: str
    rows: int
    seconds: float
    peak_rss_mb: float | None = None
    skipped: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def server() -> dict[str, Any]:
    """psycopg2 arguments of the PostgreSQL server (its maintenance database)."""
    from tests.support.airflow_env import PG_SERVER

    parts = urlsplit(PG_SERVER)
    args: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432}
    args["user"] = parts.username or "postgres"
    if parts.password:
        args["password"] = parts.password
    return args


def connect(database: str) -> Any:
    """An autocommit psycopg2 connection to ``database``."""
    import psycopg2

    connection = psycopg2.connect(dbname=database, connect_timeout=10, **server())
    connection.autocommit = True
    return connection


def create_table(database: str, rows: int) -> float:
    """The ``subscribers`` table of ``rows`` rows; the seconds it took."""
    started = time.perf_counter()
    connection = connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(CREATE.format(rows=int(rows)))  # no parameters: "%" is the modulo operator
    finally:
        connection.close()
    return time.perf_counter() - started


def reference(database: str, rows: int) -> Result:
    """``COPY (query) TO STDOUT`` of one connection piped into ``COPY ... FROM STDIN`` of another."""
    source, target = connect(database), connect(database)
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []
    try:
        with target.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS snapshot_copy; CREATE TABLE snapshot_copy ({COPY_COLUMNS})")
        with source.cursor() as cursor:
            query = QUERY.replace(":logical_date", cursor.mogrify("%s::timestamptz", (LOGICAL_DATE,)).decode())

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as pipe, source.cursor() as cursor:
                    cursor.copy_expert(f"COPY ({query}) TO STDOUT", pipe)
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        started = time.perf_counter()
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        with os.fdopen(read_fd, "rb") as pipe, target.cursor() as cursor:
            cursor.copy_expert("COPY snapshot_copy FROM STDIN", pipe, size=1 << 16)
        producer.join()
        seconds = time.perf_counter() - started
        if errors:
            raise errors[0]
        with target.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM snapshot_copy")
            copied = int(cursor.fetchone()[0])
            cursor.execute("DROP TABLE snapshot_copy")
    finally:
        source.close()
        target.close()
    if copied != rows:
        raise RuntimeError(f"the reference copied {copied} rows of {rows}")
    return Result("reference: COPY TO STDOUT | COPY FROM STDIN", copied, seconds)


def snapshot(database: str, limit: int | None, *, streamed: bool = False) -> dict[str, Any]:
    """Ours, in this (child) process: the query through the Connection into the snapshot; rows, seconds, peak RSS."""
    sys.path[:0] = [str(REPO)]
    # A task process has Airflow imported before build_audience runs: so does this one before the clock starts.
    import airflow.sdk  # noqa: F401
    from airflow.providers.common.sql.hooks.sql import DbApiHook  # noqa: F401
    from campaign_runs.factory import snapshot_sql
    from campaign_runs.factory.audience import RunSlot
    from campaign_runs.factory.hygiene import SKIP_COLUMNS, SnapshotPlan
    from campaign_runs.factory.snapshot import SnapshotStore
    from campaign_runs.factory.sources import SqlSource, bindings

    snapshot_sql.ENABLED = not streamed
    query = QUERY + (f" LIMIT {int(limit)}" if limit else "")
    source = SqlSource(conn_id=CONN_ID, query=query, timeout_seconds=3600)
    slot = RunSlot(LOGICAL_DATE, LOGICAL_DATE, LOGICAL_DATE, run_id="bench")
    from campaign_runs.factory.spec import load_spec

    spec = load_spec(REPO / "dags" / "campaigns" / "weekly_newsletter.yaml")  # its columns, consent and channels
    plan = SnapshotPlan.of(spec.audience, spec.channels)
    with SnapshotStore.postgres_connection({"dbname": database, **server()}) as store:
        store.drop(CAMPAIGN, slot.key)
        started = time.perf_counter()
        info = store.freeze(CAMPAIGN, slot.key, "bench", source.label, plan, source.rows(bindings(slot, "bench", {})))
        seconds = time.perf_counter() - started
        skipped = {}
        scope = store.scope(CAMPAIGN, slot.key)
        for channel in plan.channels:
            column = SKIP_COLUMNS[channel]
            for reason, count in store.execute(
                f"SELECT {column}, COUNT(*) FROM {scope.table} WHERE {scope.where} AND {column} IS NOT NULL "
                f"GROUP BY {column}",
                scope.params,
            ):
                skipped[f"{channel} {reason}"] = int(count)
        store.drop(CAMPAIGN, slot.key)
    return {"rows": info.rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "skipped": skipped}


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(database: str, rows: int, env: dict[str, str], *, streamed: bool = False) -> Result:
    """Ours in a fresh child process (``--child``): only the snapshot of ``rows`` rows, then its peak RSS."""
    way = ["--streamed"] if streamed else []
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.audience", "--child", database, "--limit", str(rows), *way],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(output.strip().splitlines()[-1])
    if data["rows"] != rows:
        raise RuntimeError(f"the snapshot holds {data['rows']} rows of {rows}")
    label = "ours streamed: SqlSource -> freeze, Python" if streamed else "ours: SqlSource -> SnapshotStore.freeze"
    return Result(label, data["rows"], data["seconds"], data["peak_rss_mb"], data["skipped"])


def show(result: Result, references: list[Result]) -> None:
    """One line: rows, seconds, rows/s, and for ours the ratio to the mean of the reference runs."""
    ratio = ""
    if references and not result.label.startswith("reference"):
        mean = sum(r.rate for r in references) / len(references)
        ratio = f"{result.rate / mean:5.2f}x reference"
    rss = f"peak RSS {result.peak_rss_mb:5.0f} MB" if result.peak_rss_mb else " " * 17
    print(
        f"  {result.rows:>9,}  {result.label:<45} {result.seconds:7.2f} s {result.rate:>10,.0f} rows/s  {rss}  {ratio}",
        flush=True,
    )


def main() -> None:
    """Create the database and table; measure reference, ours, reference, ours streamed, reference; then RSS."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the subscribers table")
    parser.add_argument("--child", metavar="DATABASE", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--streamed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(snapshot(args.child, args.limit or None, streamed=args.streamed)), flush=True)
        return
    if args.rows < SMALL:
        parser.error(f"--rows must be at least {SMALL:,} (the RSS comparison's small size)")

    import psycopg2

    from tests.support.airflow_env import create_pg_database, drop_pg_database

    try:
        connect("postgres").close()
    except psycopg2.OperationalError as error:  # make bench runs on machines without the server, too
        print(f"  skipped: no PostgreSQL server answers ({str(error).strip().splitlines()[0]})")
        return
    database = f"campaign_audience_bench_{os.getpid()}"
    home = Path(tempfile.mkdtemp(prefix="campaign-audience-bench-"))
    address = server()
    login = address["user"] + (f":{address['password']}" if "password" in address else "")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": f"postgres://{login}@{address['host']}:{address['port']}/{database}",
        "PYTHONPATH": os.pathsep.join(part for part in (str(REPO), os.environ.get("PYTHONPATH", "")) if part),
    }
    create_pg_database(database)
    try:
        print(f"  {args.rows:,} subscribers created in {create_table(database, args.rows):.1f} s", flush=True)
        print(f"  {'rows':>9}  {'way':<45} {'time':>9} {'rate':>17}  {'':<17}  ratio", flush=True)
        references: list[Result] = []
        references.append(reference(database, args.rows))
        show(references[-1], references)
        ours = child(database, args.rows, env)
        references.append(reference(database, args.rows))
        show(references[-1], references)
        streamed = child(database, args.rows, env, streamed=True)
        references.append(reference(database, args.rows))
        show(references[-1], references)
        show(ours, references)
        show(streamed, references)
        small, small_streamed = child(database, SMALL, env), child(database, SMALL, env, streamed=True)
        show(small, [])
        show(small_streamed, [])
    finally:
        drop_pg_database(database)
        shutil.rmtree(home, ignore_errors=True)
    summary(ours, streamed, references, (small, small_streamed), args.rows)


def summary(ours: Result, streamed: Result, references: list[Result], small: tuple[Result, Result], rows: int) -> None:
    """Skip counts, the ratios to the reference, the growth of the peak RSS."""
    if ours.skipped != streamed.skipped:
        raise RuntimeError(f"the two ways skipped differently: {ours.skipped} vs {streamed.skipped}")
    print(
        "\nSkipped in the snapshot of ours (per channel and reason, the same both ways): "
        + ", ".join(f"{name} {count:,}" for name, count in sorted((ours.skipped or {}).items()))
    )
    mean = sum(r.rate for r in references) / len(references)
    for label, result in (("ours", ours), ("ours streamed", streamed)):
        ratio = result.rate / mean
        print(
            f"\nRatio: {label} {result.rate:,.0f} rows/s / reference {mean:,.0f} rows/s (mean of {len(references)}) "
            f"= {ratio:.2f}x (goal >= {RATIO_GOAL}x: {'met' if ratio >= RATIO_GOAL else 'MISSED'})"
        )
    print(f"\nPeak RSS of a process doing only ours, {SMALL:,} -> {rows:,} rows")
    for result, before in ((ours, small[0]), (streamed, small[1])):
        growth = (result.peak_rss_mb or 0) - (before.peak_rss_mb or 0)
        print(
            f"  {before.peak_rss_mb:6.0f} MB -> {result.peak_rss_mb:6.0f} MB  ({growth:+.0f} MB; "
            f"goal <= {GROWTH_GOAL_MB:.0f} MB: {'met' if growth <= GROWTH_GOAL_MB else 'MISSED'})  {result.label}"
        )


if __name__ == "__main__":
    if "--child" in sys.argv:  # a measured child prints only its JSON: the parent records the results
        main()
    else:
        with recorded("audience"):
            main()
