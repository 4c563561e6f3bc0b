"""Audience sources read for real: SQL through an Airflow Connection (SQLite file, PostgreSQL), files (local, S3).

The SQL tests run the same body on both databases: rows come from a server-side cursor a few at a time, the slot
and the run's params are bind parameters, and every failure (query error, timeout, unknown Connection) is an
``AudienceSourceError`` with the database's own words. File tests feed hostile lines and check each is refused
with its line number; S3 goes through moto's server with an ``aws`` Connection.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory import sources
from campaign_runs.factory.audience import RunSlot
from campaign_runs.factory.sources import (
    MAX_LINE_BYTES,
    AudienceSourceError,
    FileSource,
    SqlSource,
    bindings,
    source_for,
)
from campaign_runs.factory.spec import parse_spec

from tests.support.airflow_env import create_pg_database, drop_pg_database
from tests.support.ledger_db import connect_args, connection_uri

CONN_ID = "audience_source"
PEOPLE = [  # person_id, email, country, joined
    *((f"p{n:03d}", f"person{n}@example.org", "FR" if n % 2 else "DE", f"2026-0{1 + n % 3}-01") for n in range(60)),
]
SLOT = RunSlot("2026-02-15T00:00:00+00:00", "2026-01-15T00:00:00+00:00", "2026-02-15T00:00:00+00:00", "run-7")


@dataclass
class SqlBackend:
    """One database behind Connection ``audience_source``: set-up statements, what the database is doing."""

    name: str
    execute: Callable[[str], None]
    query: Callable[[str], list[tuple[Any, ...]]]  # from another connection
    slow_query: str
    timeout_words: str
    missing_table_words: str
    cursors: list[tuple[bool, str | None]] = field(default_factory=list)  # (stream_results, DB-API cursor name)
    ticks: list[Any] = field(default_factory=list)  # SQLite: one per row the database computed (function tick)

    def people(self, rows: list[tuple[str, str, str, str]] = PEOPLE) -> None:
        """A fresh ``people`` table holding ``rows``."""
        self.execute("DROP TABLE IF EXISTS people")
        self.execute("CREATE TABLE people (person_id TEXT, email TEXT, country TEXT, joined TEXT)")
        if rows:
            values = ", ".join("('{}', '{}', '{}', '{}')".format(*row) for row in rows)
            self.execute(f"INSERT INTO people VALUES {values}")


@pytest.fixture(scope="module")
def pg_source_database() -> Iterator[str]:
    """This module's own PostgreSQL database, standing for a warehouse; dropped at the end."""
    name = f"campaign_source_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    try:
        yield name
    finally:
        drop_pg_database(name)


def _watch_engines(monkeypatch: pytest.MonkeyPatch, backend: SqlBackend, on_connect: Callable[[Any], None]) -> None:
    """Every engine the source makes records how each statement is run (stream_results, cursor name)."""
    from sqlalchemy import event

    original = SqlSource.engine

    def engine(self: SqlSource) -> Any:
        made = original(self)

        @event.listens_for(made, "connect")
        def connected(dbapi_connection: Any, record: Any) -> None:
            on_connect(dbapi_connection)

        @event.listens_for(made, "before_cursor_execute")
        def executing(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                stream = bool(context.execution_options.get("stream_results"))
                backend.cursors.append((stream, getattr(cursor, "name", None)))

        return made

    monkeypatch.setattr(SqlSource, "engine", engine)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlBackend:
    """Connection ``audience_source`` to a SQLite file or to this module's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"

        def execute_sqlite(statement: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute(statement)

        def query_sqlite(statement: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as db:
                return list(db.execute(statement))

        backend = SqlBackend(
            "sqlite",
            execute_sqlite,
            query_sqlite,
            slow_query="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT x AS person_id FROM c WHERE x < 0",
            timeout_words="interrupted",
            missing_table_words="no such table: no_such_table",
        )
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
        _watch_engines(monkeypatch, backend, lambda db: db.create_function("tick", 1, backend.ticks.append))
        return backend

    import psycopg2

    database = request.getfixturevalue("pg_source_database")

    def execute_pg(statement: str) -> None:
        connection = psycopg2.connect(**connect_args(database))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '10s'")  # a test that left a cursor open fails, not hangs
                cursor.execute(statement)
        finally:
            connection.close()

    def query_pg(statement: str) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(**connect_args(database))
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, (database,))
                return list(cursor.fetchall())
        finally:
            connection.close()

    backend = SqlBackend(
        "postgres",
        execute_pg,
        query_pg,
        slow_query="SELECT pg_sleep(30)::text AS person_id",
        timeout_words="canceling statement due to statement timeout",
        missing_table_words='relation "no_such_table" does not exist',
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_uri(database))
    _watch_engines(monkeypatch, backend, lambda db: None)
    return backend


PG_FETCHING = (
    "SELECT query, state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
    "AND query LIKE 'FETCH FORWARD %%'"
)


def test_rows_come_from_a_server_side_cursor_a_few_at_a_time(
    sql_backend: SqlBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first row arrives when the database has computed one fetch's worth, not the whole result.

    SQLite: a function in the select list counts the rows the database computed. PostgreSQL: the source's session
    is seen waiting between two ``FETCH FORWARD 10`` of a named cursor, and a row far down the result that sleeps
    5 s does not delay the first row.
    """
    monkeypatch.setattr(sources, "FETCH_ROWS", 10)
    many = [(f"m{n:04d}", f"m{n}@example.org", "FR", "2026-01-01") for n in range(1000)]
    sql_backend.people(many)
    late = "tick(person_id)" if sql_backend.name == "sqlite" else "CASE WHEN person_id = 'm0900' THEN pg_sleep(5) END"
    rows = SqlSource(CONN_ID, f"SELECT person_id, email, {late} AS late FROM people", 30).rows({})
    with closing(rows):
        started = time.monotonic()
        first_two = [next(rows), next(rows)]  # SQLAlchemy fetches 1 row, then FETCH_ROWS at a time
        assert [row["person_id"] for row in first_two] == ["m0000", "m0001"]
        assert time.monotonic() - started < 4
        stream, cursor_name = sql_backend.cursors[-1]
        assert stream is True  # the query ran with stream_results
        if sql_backend.name == "sqlite":
            assert 2 <= len(sql_backend.ticks) <= 20, len(sql_backend.ticks)  # 1 + FETCH_ROWS, not 1000
            assert len(list(rows)) == 998
            assert len(sql_backend.ticks) == 1000
        else:
            assert cursor_name, "PostgreSQL rows must come from a named (server-side) cursor"
            [(statement, state)] = sql_backend.query(PG_FETCHING)
            assert statement.startswith(f'FETCH FORWARD 10 FROM "{cursor_name}"'), statement
            assert state == "idle in transaction"
    assert time.monotonic() - started < 4  # closed before the sleeping row: it was never computed
    if sql_backend.name == "postgres":
        assert sql_backend.query(PG_FETCHING) == []
        everyone = SqlSource(CONN_ID, "SELECT person_id FROM people", 30).rows({})
        assert sum(1 for _ in everyone) == 1000


def test_slot_run_id_and_params_are_bind_parameters(sql_backend: SqlBackend) -> None:
    """:logical_date, :data_interval_start/end, :run_id and a run param are bound (never pasted into the SQL)."""
    sql_backend.people()
    query = (
        "SELECT person_id, email, :run_id AS seen_run, :data_interval_start AS seen_start FROM people "
        "WHERE joined <= :logical_date AND joined >= :data_interval_start AND country = :country "
        "AND joined <= :data_interval_end ORDER BY person_id"
    )
    values = bindings(SLOT, "run-7", {"country": "FR", "nested": {"ignored": True}, "list": [1]})
    assert "nested" not in values and "list" not in values
    rows = list(SqlSource(CONN_ID, query, 30).rows(values))
    start, end = str(SLOT.data_interval_start), str(SLOT.logical_date)
    expected = sorted(p[0] for p in PEOPLE if p[2] == "FR" and start <= p[3] <= end)
    assert [row["person_id"] for row in rows] == expected and len(expected) == 10
    assert {(row["seen_run"], row["seen_start"]) for row in rows} == {("run-7", start)}
    hostile = bindings(SLOT, "run-7", {"country": "FR' OR '1'='1"})
    assert list(SqlSource(CONN_ID, query, 30).rows(hostile)) == []


def test_a_query_error_fails_with_the_database_message(sql_backend: SqlBackend) -> None:
    """The error is the database's own first line, for rows and for columns alike."""
    source = SqlSource(CONN_ID, "SELECT person_id FROM no_such_table", 30)
    with pytest.raises(AudienceSourceError, match=f"^the query failed: {sql_backend.missing_table_words}"):
        list(source.rows({}))
    with pytest.raises(AudienceSourceError, match=sql_backend.missing_table_words):
        source.columns({})
    unbound = SqlSource(CONN_ID, "SELECT :nobody_gave_this AS x", 30)
    with pytest.raises(AudienceSourceError, match="nobody_gave_this"):
        list(unbound.rows({}))


def test_a_slow_query_stops_at_timeout_seconds(sql_backend: SqlBackend) -> None:
    """``timeout_seconds: 1``: the database gives up after about a second and the error says it was the timeout."""
    source = SqlSource(CONN_ID, sql_backend.slow_query, 1)
    started = time.monotonic()
    with pytest.raises(AudienceSourceError) as raised:
        list(source.rows({}))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 8, elapsed
    message = str(raised.value)
    assert sql_backend.timeout_words in message
    assert "ran longer than timeout_seconds: 1 s" in message


def test_zero_rows_is_an_empty_audience_not_an_error(sql_backend: SqlBackend) -> None:
    """A query matching nobody yields nothing; its columns are still known."""
    sql_backend.people([])
    source = SqlSource(CONN_ID, "SELECT person_id, email FROM people", 30)
    assert list(source.rows({})) == []
    assert source.columns({}) == ["person_id", "email"]


def test_an_unknown_or_non_sql_connection_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """No such Connection: named; a Connection that is no database: said so."""
    with pytest.raises(AudienceSourceError, match=r"^the Connection 'no_such_warehouse' does not exist$"):
        list(SqlSource("no_such_warehouse", "SELECT 1", 30).rows({}))
    monkeypatch.setenv("AIRFLOW_CONN_NOT_A_DATABASE", json.dumps({"conn_type": "aws", "login": "a"}))
    with pytest.raises(AudienceSourceError, match=r"'not_a_database' (is not a SQL database|has no SQL hook)"):
        list(SqlSource("not_a_database", "SELECT 1", 30).rows({}))


def test_a_nul_character_is_refused_before_any_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite can hold a NUL in text, PostgreSQL (a snapshot's database) cannot: the row is refused, named."""
    path = tmp_path / "nul.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (person_id TEXT, email TEXT)")
        db.execute("INSERT INTO t VALUES ('a', 'a@example.org'), ('b', 'b' || char(0) || '@example.org')")
    monkeypatch.setenv("AIRFLOW_CONN_NUL_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    with pytest.raises(AudienceSourceError, match=r"^row 2: column 'email' holds a NUL character$"):
        list(SqlSource("nul_db", "SELECT * FROM t ORDER BY person_id", 30).rows({}))


# --- files -------------------------------------------------------------------------------------------------------

CAMPAIGN = """
id: file_news
description: Newsletter from a file.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {{cron: null, start_date: 2025-01-01}}
audience:
  source: file
  url: {url}
  columns: {{id: person_id}}
channels:
  email: {{subject: Hi, body: Hello}}
"""


@pytest.fixture
def file_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``[campaign_runs] audience_file_roots``: only ``<tmp>/allowed``."""
    root = tmp_path / "allowed"
    root.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__AUDIENCE_FILE_ROOTS", str(root))
    return root


def file_campaign(folder: Path, url: str) -> Any:
    """The audience of a campaign YAML written in ``folder`` with ``url``, parsed as the loader parses it."""
    from campaign_runs.factory.documents import load_yaml

    text = CAMPAIGN.format(url=url)
    path = folder / "file_news.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_spec(load_yaml(text), path).audience


def test_csv_and_jsonl_relative_to_the_yaml_are_read(file_root: Path) -> None:
    """A relative url is resolved against the YAML's folder; the format follows the extension."""
    campaigns = file_root / "campaigns"
    (campaigns / "lists").mkdir(parents=True)
    (campaigns / "lists" / "people.csv").write_bytes(
        '\ufeffperson_id,email,first_name\r\np1,p1@example.org,Zoë\r\np2,p2@example.org,"Smith, Jr"\r\n'.encode()
    )
    (campaigns / "lists" / "people.jsonl").write_text(
        '{"person_id": "p1", "email": "p1@example.org", "score": 1.5, "vip": true}\n\n'
        '{"person_id": "p2", "email": "p2@example.org", "score": null, "vip": false}\n',
        encoding="utf-8",
    )
    csv_audience = file_campaign(campaigns, "lists/people.csv")
    assert csv_audience.url == (campaigns / "lists" / "people.csv").resolve().as_uri()
    assert csv_audience.format == "csv"
    csv_source = source_for(csv_audience)
    assert csv_source.columns({}) == ["person_id", "email", "first_name"]
    assert list(csv_source.rows({})) == [
        {"person_id": "p1", "email": "p1@example.org", "first_name": "Zoë"},
        {"person_id": "p2", "email": "p2@example.org", "first_name": "Smith, Jr"},
    ]
    jsonl_source = source_for(file_campaign(campaigns, "lists/people.jsonl"))
    assert jsonl_source.columns({}) == ["person_id", "email", "score", "vip"]
    assert [row["vip"] for row in jsonl_source.rows({})] == [True, False]


@pytest.mark.parametrize(
    "name",
    ["outside.csv", "allowed/../outside.csv", "allowed/dir?/../../outside.csv", "allowed/dir#/../../outside.csv"],
)
def test_a_file_outside_the_allowed_roots_is_refused(file_root: Path, name: str) -> None:
    """Outside the roots, also through ``..`` or a ``?``/``#`` that urlparse would cut off but the opener keeps."""
    (file_root / "dir?").mkdir()
    (file_root / "dir#").mkdir()
    outside = file_root.parent / "outside.csv"
    outside.write_text("person_id,email\nsecret,secret@example.org\n", encoding="utf-8")
    url = f"file://{file_root.parent.as_posix()}/{name}"
    source = FileSource(url, "", "csv")
    with pytest.raises(AudienceSourceError, match="is outside the folders audiences may be read from"):
        list(source.rows({}))
    with pytest.raises(AudienceSourceError, match="is outside the folders"):
        source.columns({})
    relative = file_campaign(file_root, "../outside.csv")  # the spec resolves it; reading refuses it
    with pytest.raises(AudienceSourceError, match="is outside the folders"):
        list(source_for(relative).rows({}))


LONG = b"x" * (MAX_LINE_BYTES + 10)
HOSTILE = {
    "long-line-csv": ("csv", b"person_id,email\np1,a@example.org\np2," + LONG + b"\n", "^line 3 is longer than"),
    "long-last-line-jsonl": ("jsonl", b'{"a": 1}\n' + LONG, "^line 2 is longer than"),
    "nested-object": ("jsonl", b'{"a": 1}\n\n{"a": {"b": 1}}\n', "^line 3: values must be .* not nested"),
    "nested-list": ("jsonl", b'{"a": 1}\n{"a": [1, 2]}\n', "^line 2: values must be .* not nested"),
    "deeply-nested": ("jsonl", b'{"a": 1}\n{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}\n", "^line 2: .*not nested"),
    "not-an-object": ("jsonl", b'{"a": 1}\n[1]\n', "^line 2 is not a JSON object"),
    "not-json": ("jsonl", b'{"a": 1}\n{"a": \n', "^line 2 is not JSON"),
    "non-utf8-csv": ("csv", b"person_id,email\np1,a@example.org\np2,b\xff@example.org\n", "^line 3 is not UTF-8"),
    "non-utf8-jsonl": ("jsonl", b'{"a": 1}\n{"a": "\xc3\x28"}\n', "^line 2 is not UTF-8"),
    "non-utf8-end": ("csv", b"person_id,email\np1,a@example.org\np2,b@example.org\xc3", "^line 3 is not UTF-8"),
    "more-fields": ("csv", b"person_id,email\np1,a@example.org\np2,b@example.org,extra\n", "^line 3: more fields"),
    "more-fields-after-quoted-newline": (
        "csv",
        b'person_id,email,note\np1,a@example.org,"two\nlines"\n\np2,b@example.org,n,extra\n',
        "^line 5: more fields",
    ),
    "bad-quoting": ("csv", b'person_id,email\np1,"a"b@example.org\n', "^line 2: ',' expected after"),
    "nul": ("csv", b"person_id,email\np1,a\x00@example.org\n", "^line 2: column 'email' holds a NUL"),
    "value-too-long": ("csv", b"person_id,email\np1," + b"y" * 9000 + b"\n", "^line 2: column 'email' holds 9000"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_is_refused_with_its_line_number(file_root: Path, case: str) -> None:
    """Each hostile line stops the read with an error naming its line of the file (header and blank lines count)."""
    fmt, data, message = HOSTILE[case]
    path = file_root / f"{case}.{fmt}"
    path.write_bytes(data)
    with pytest.raises(AudienceSourceError, match=message):
        list(FileSource(path.as_uri(), "", fmt).rows({}))


def test_a_missing_file_fails_clearly(file_root: Path) -> None:
    """A file that is not there is named."""
    with pytest.raises(AudienceSourceError, match=r"^cannot read file://.*missing\.csv: FileNotFoundError"):
        list(FileSource((file_root / "missing.csv").as_uri(), "", "csv").rows({}))


# --- S3 through moto's server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server for this module, with bucket ``audiences``."""
    from tests.support.moto_s3 import moto_server, s3_client

    with moto_server() as endpoint:
        s3_client(endpoint).create_bucket(Bucket="audiences")
        yield endpoint


def test_s3_files_are_read_through_the_connection(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``s3://`` with ``conn_id``: rows streamed through object storage; the line cap holds there too."""
    from tests.support.moto_s3 import aws_connection, s3_client

    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", aws_connection(s3_endpoint))
    client = s3_client(s3_endpoint)
    people = "person_id,email\n" + "".join(f"s{n},s{n}@example.org\n" for n in range(2000))
    client.put_object(Bucket="audiences", Key="lists/people.csv", Body=people.encode())
    client.put_object(Bucket="audiences", Key="lists/people.jsonl", Body=b'{"person_id": "j1", "email": "j@x.org"}\n')
    client.put_object(Bucket="audiences", Key="lists/long.csv", Body=b"person_id,email\n" + LONG)

    csv_source = FileSource("s3://audiences/lists/people.csv", "aws_moto", "csv")
    assert csv_source.label == "CSV file s3://audiences/lists/people.csv"
    assert csv_source.columns({}) == ["person_id", "email"]
    rows = list(csv_source.rows({}))
    assert len(rows) == 2000 and rows[1999] == {"person_id": "s1999", "email": "s1999@example.org"}
    assert list(FileSource("s3://audiences/lists/people.jsonl", "aws_moto", "jsonl").rows({})) == [
        {"person_id": "j1", "email": "j@x.org"}
    ]
    with pytest.raises(AudienceSourceError, match=r"^line 2 is longer than"):
        list(FileSource("s3://audiences/lists/long.csv", "aws_moto", "csv").rows({}))
    with pytest.raises(AudienceSourceError, match=r"^cannot read s3://audiences/lists/none\.csv: FileNotFoundError"):
        list(FileSource("s3://audiences/lists/none.csv", "aws_moto", "csv").rows({}))
    with pytest.raises(AudienceSourceError, match=r"^the Connection 'aws_nowhere' does not exist$"):
        list(FileSource("s3://audiences/lists/people.csv", "aws_nowhere", "csv").rows({}))


def test_rows_are_checked_a_chunk_at_a_time_as_one_by_one() -> None:
    """``checked_rows`` gives what ``checked_row`` gives each row: values converted, the first bad one refused."""
    import datetime as dt
    from decimal import Decimal

    from campaign_runs.factory.sources import MAX_VALUE_CHARS, checked_row, checked_rows

    names = ("id", "email", "when", "amount", "ok")
    plain = [(f"p{n}", f"p{n}@example.org", None, n * 1.5, n % 2 == 0) for n in range(10)]
    assert checked_rows(names, list(plain), 1) == plain
    mixed = [*plain[:3], ("p3", "p3@example.org", dt.date(2026, 1, 2), Decimal("12.50"), True), *plain[4:]]
    expected = [tuple(checked_row(dict(zip(names, row, strict=True)), n).values()) for n, row in enumerate(mixed, 1)]
    assert [tuple(row) for row in checked_rows(names, mixed, 1)] == expected
    assert expected[3][2:4] == ("2026-01-02", "12.50")
    for bad, words in (("y" * (MAX_VALUE_CHARS + 1), "holds 8193 characters"), ("a\x00b", "holds a NUL character")):
        rows = [*plain[:6], ("p6", bad, None, 0.0, True), ("p7", bad, None, 0.0, True)]
        with pytest.raises(AudienceSourceError, match=rf"^row 106: column 'email' {words}"):
            checked_rows(names, rows, 100)
    twice = ("id", "email", "id")  # a name twice: the last value, as the rows' dicts hold it
    assert [tuple(row) for row in checked_rows(twice, [("a", "e", "b")], 1)] == [("b", "e", "b")]
    with pytest.raises(AudienceSourceError, match=r"^row 1: 201 columns"):
        checked_rows(tuple(f"c{n}" for n in range(201)), [tuple(range(201))], 1)
