"""A PostgreSQL audience copied database to database (``snapshot_sql``) gives exactly the streamed snapshot.

Each case freezes the same query twice into a PostgreSQL ledger: once as the database copies it (hygiene in SQL,
non-ASCII addresses decided in Python afterwards), once streamed through Python (``snapshot_sql.ENABLED`` off),
and compares every row: positions, recipients, addresses, skip reasons, template values. Rows are chosen to
sit on each edge of the checks: whitespace Python strips and PostgreSQL does not, case folding, addresses one
character too long, consent words, duplicates of every kind, text JSON must escape.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory import snapshot, snapshot_sql
from campaign_runs.factory.addresses import is_email_address
from campaign_runs.factory.hygiene import ASCII_EMAIL, SnapshotPlan
from campaign_runs.factory.snapshot import SnapshotStore
from campaign_runs.factory.sources import AudienceSourceError, SqlSource

from tests.support.airflow_env import create_pg_database, drop_pg_database
from tests.support.ledger_db import connect_args, connection_uri, ledger_database
from tests.support.snapshots import snapshot_rows

CONN_ID = "warehouse_pg"
COLUMNS = "position, recipient, email, phone, push_token, skip_email, skip_sms, skip_push, fields"
EMAILS = [
    *("a@example.org", "A.b@Example.ORG", " a@example.org ", "\u3000a@example.org\u00a0", "\u200ba@example.org"),
    *(".a@example.org", "a.@example.org", "a..b@example.org", "a b@example.org", 'a"b@example.org', "o'neil@x.org"),
    *("x" * 64 + "@example.org", "x" * 65 + "@example.org", "a@" + "x" * 63 + ".org", "a@" + "x" * 64 + ".org"),
    *("a@b", "a@-b.org", "a@b-.org", "a@_b.org", "a@b_.org", "a@b_c.org", "a@b..org", "a@.b.org", "a@b.org."),
    *("a@@b.org", "a@b@c.org", "@b.org", "a@", "a+tag@b.org", "a\\b@c.org", "a(b)@c.org", "a@1.2", "a@b.c.d.e"),
    *("JOSÉ@exämple.org", "josé@exämple.org", "é@.org", "a@ex_ämple.org", "a@例え.jp", "ÅSA@EXAMPLE.ORG"),
    *("a@" + ("x" * 60 + ".") * 4 + "org", "a@" + ("x" * 60 + ".") * 3 + "xx.org", "", "   ", None, "a\t@b.org"),
    *("a\u0085@b.org", "a@b.org\u2028", "USER@EXAMPLE.ORG", "user@example.org", "a@b.org", "tab\tin@b.org"),
]
PHONES = [
    *("+33612345678", "+33 6 12 34 56 78", "+33 (6) 12-34-56-78", "0612345678", "+0612345678", "+123456"),
    *("+1234567", "+123456789012345", "+1234567890123456", "+33\u00a0612345678", "+33\u3000612345678"),
    *("+٣٣٦١٢٣٤٥٦٧٨", "+33.6.12.34.56.78", "++33612345678", "+33 6 12 34 56 7a", " ", None, "+33 612 345 678"),
]
TOKENS = [
    *("tok", " tok ", "tok\n1", "tok\x7f", "tok\u200b", "tok-é", "tok\u00ad", "x" * 4096, "x" * 4097, "\u3000"),
    *("tok\ttab", "", None, "tok", "TOK", "tok-é"),
]
WORDS = [
    *("yes", " YES ", "On", "TRUE", "tRuE", "t", "T", "1", " 1 ", "maybe", "no", "", None, "\uff39\uff25\uff33"),
    *("yes\u00a0", "\u212a", "y", "on\u3000", "0", "Yes!", "yés", "\u200byes"),
]
NOTES = ['O"Brien, Jr', "two\nlines\r\nand a tab\t", "C:\\N\\.", "", None, "\\N", "\x01\x1f\x7f", "🎉 \u2028 é"]


def people() -> list[tuple[Any, ...]]:
    """Source rows walking the lists above at different strides, with duplicates of every kind."""
    rows = []
    for n in range(len(EMAILS) * 2):
        person_id: str | None = f"p{n}" if n % 17 else None
        if n % 19 == 3:
            person_id = f"  p{n - 1}\u00a0"  # the id of the row before, once stripped
        if n == 40:
            person_id = "#34"  # the placeholder of row 34, which has no id
        if n == 41:
            person_id = "\u200b"  # a zero-width space: an id (equal to '' in a collation that ignores it)
        rows.append(
            (
                n,
                person_id,
                n * 7 - 30 if n % 13 else None,
                EMAILS[n % len(EMAILS)],
                PHONES[(n * 3) % len(PHONES)],
                TOKENS[(n * 5) % len(TOKENS)],
                None if n % 11 == 0 else n % 6 != 0,
                WORDS[(n * 7) % len(WORDS)],
                f"Name{n}" if n % 9 else None,
                NOTES[n % len(NOTES)],
                2**62 - n if n % 2 else -n,
                n % 4 == 0,
                n % 3 - 1,
            )
        )
    return rows


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    """A PostgreSQL source database with the ``people`` table."""
    import psycopg2

    name = f"campaign_source_sql_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    connection = psycopg2.connect(**connect_args(name))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE people (n int, person_id text, num_id bigint, email text, mobile varchar(64), "
                "token text, opted_in boolean, sms_ok text, first_name text, note varchar, score int8, vip boolean, "
                "small int2); CREATE SEQUENCE counter; "
                "CREATE COLLATION loose (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
            )
            cursor.executemany(f"INSERT INTO people VALUES ({', '.join(['%s'] * 13)})", people())
        yield name
    finally:
        connection.close()
        drop_pg_database(name)


@pytest.fixture(scope="module")
def ledger() -> Iterator[dict[str, Any]]:
    """The PostgreSQL ledger database's connection arguments."""
    with ledger_database("snapshot_sql") as name:
        yield connect_args(name)


@pytest.fixture
def copies(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Connection ``warehouse_pg``; the rows each database-to-database copy wrote (None: it failed)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_uri(warehouse))
    made: list[int | None] = []
    original = snapshot.copy_lines

    def counted(connection: Any, statement: str, lines: Iterator[bytes], mark: bytes) -> tuple[int, bool]:
        made.append(None)
        result = original(connection, statement, lines, mark)
        made[-1] = result[0]
        return result

    monkeypatch.setattr(snapshot, "copy_lines", counted)
    return made


def frozen(
    ledger: dict[str, Any], plan: SnapshotPlan, query: str, values: dict[str, Any] | None = None, *, copy: bool
) -> list[tuple[Any, ...]]:
    """The snapshot rows of ``query`` under ``plan``, copied by the database (``copy``) or streamed."""
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    source = SqlSource(CONN_ID, query, 60)
    with SnapshotStore.postgres_connection(ledger) as store:
        snapshot_sql.ENABLED = copy
        try:
            store.freeze(campaign, "slot", "run", source.label, plan, source.rows(values or {}))
        finally:
            snapshot_sql.ENABLED = True
        rows = snapshot_rows(store, campaign, "slot", COLUMNS)
        store.drop(campaign)
    return rows


PLANS = {
    "mapped": SnapshotPlan(
        columns={"id": "person_id", "phone": "mobile", "push_token": "token", "first": "first_name"},
        channels=("email", "sms", "push"),
        consent_column="opted_in",
        channel_consent={"sms": "sms_ok", "push": "sms_ok"},
    ),
    "integer-id-and-consent": SnapshotPlan(columns={"id": "num_id"}, channels=("email",), consent_column="small"),
    "boolean-id-text-consent": SnapshotPlan(
        columns={"id": "vip", "email": "no_such_column", "phone": "mobile"},
        channels=("sms", "push"),
        consent_column="sms_ok",
        channel_consent={"push": "no_such_column"},
    ),
    "as-named": SnapshotPlan(columns={}, channels=("email", "push")),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_the_database_copy_is_the_streamed_snapshot(
    ledger: dict[str, Any], copies: list[int | None], name: str
) -> None:
    """Every row, address, skip reason and template value is the same both ways, for each kind of mapping."""
    query = "SELECT * FROM people WHERE n >= :first ORDER BY n"
    copied = frozen(ledger, PLANS[name], query, {"first": 0}, copy=True)
    assert copies == [len(people())], "the database copied the rows"
    streamed = frozen(ledger, PLANS[name], query, {"first": 0}, copy=False)
    assert copies == [len(people())], "the second snapshot was streamed"
    assert len(copied) == len(people())
    for mine, theirs in zip(copied, streamed, strict=True):
        assert mine == theirs
    reasons = {reason for row in copied for reason in row[5:8]}
    assert {"no_id", "invalid_address", "no_address", "no_consent", "duplicate", None} <= reasons or name != "mapped"


def test_a_sqlite_ledger_streams_the_same_snapshot(
    ledger: dict[str, Any], copies: list[int | None], tmp_path: Path
) -> None:
    """The same PostgreSQL source into a campaign's SQLite file: streamed a chunk at a time, the same rows."""
    query = "SELECT * FROM people ORDER BY n"
    source = SqlSource(CONN_ID, query, 60)
    with SnapshotStore.sqlite(tmp_path / "ledger.sqlite") as store:
        store.freeze("c", "slot", "run", source.label, PLANS["mapped"], source.rows({}))
        local = snapshot_rows(store, "c", "slot", COLUMNS)
    assert copies == []
    assert local == frozen(ledger, PLANS["mapped"], query, copy=True) and copies == [len(people())]


def test_binds_percent_signs_and_a_trailing_semicolon(ledger: dict[str, Any], copies: list[int | None]) -> None:
    """Bound values (text, number, NULL) and a literal ``%`` reach the database as in a streamed read."""
    query = (
        "SELECT person_id, email, '100%' AS pct, :label AS label, CAST(:limit AS int) AS lim, :nothing AS nothing "
        "FROM people WHERE n < :limit AND email LIKE '%@%' ORDER BY n;"
    )
    values = {"label": "it's", "limit": 30, "nothing": None}
    plan = SnapshotPlan(columns={"id": "person_id"}, channels=("email",))
    copied = frozen(ledger, plan, query, values, copy=True)
    assert copies and copied == frozen(ledger, plan, query, values, copy=False)
    assert json.loads(copied[1][8]) == {"person_id": "p1", "pct": "100%", "label": "it's", "lim": 30, "nothing": None}


def test_a_collation_that_ignores_case_and_accents_changes_nothing(
    ledger: dict[str, Any], copies: list[int | None]
) -> None:
    """Text in a nondeterministic collation ('' equal to a zero-width space, 'yés' to 'YES'): compared as Python
    compares it, byte for byte, both ways."""
    loose = ", ".join(f"{name} COLLATE loose AS {name}" for name in ("person_id", "email", "mobile", "token", "sms_ok"))
    query = f"SELECT n, {loose}, opted_in, first_name FROM people ORDER BY n"
    copied = frozen(ledger, PLANS["mapped"], query, copy=True)
    assert copies == [len(people())]
    assert copied == frozen(ledger, PLANS["mapped"], query, copy=False)
    assert copied[41][1] == "\u200b"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT person_id, email, n::numeric AS amount FROM people ORDER BY n",  # a type SQL does not convert
        "SELECT person_id, email, DATE '2026-01-02' AS day FROM people ORDER BY n",
        "SELECT person_id, email, email AS person_id FROM people ORDER BY n",  # a name twice
    ],
)
def test_other_column_types_are_streamed(ledger: dict[str, Any], copies: list[int | None], query: str) -> None:
    """A result SQL would not write as Python does is streamed whole: the same snapshot, no copy."""
    plan = PLANS["mapped"]
    assert frozen(ledger, plan, query, copy=True) == frozen(ledger, plan, query, copy=False)
    assert copies == []


def failure(ledger: dict[str, Any], query: str, *, copy: bool, timeout: float = 60) -> str:
    """The error freezing ``query`` fails with (the store's database keeps no row of it)."""
    source = SqlSource(CONN_ID, query, timeout)
    tables = "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE 'campaign_audience_rows%'"
    with SnapshotStore.postgres_connection(ledger) as store:
        before = store.execute(tables)
        snapshot_sql.ENABLED = copy
        try:
            with pytest.raises(AudienceSourceError) as raised:
                store.freeze("c-failing", "slot", "run", source.label, PLANS["mapped"], source.rows({}))
        finally:
            snapshot_sql.ENABLED = True
        assert store.execute(f"SELECT COUNT(*) FROM {snapshot.META_TABLE} WHERE campaign='c-failing'") == [(0,)]
        assert store.execute(tables) == before
    return str(raised.value)


def test_errors_are_the_streamed_reads_errors(ledger: dict[str, Any], copies: list[int | None], warehouse: str) -> None:
    """A value over the cap (row and column named), a write in the read-only session, a statement too many, a
    missing table: the same words both ways, and nothing written; the sequence was never advanced."""
    long = "SELECT person_id, email, CASE WHEN n = 7 THEN repeat('y', 9000) ELSE note END AS note FROM people"
    for query in (
        long,
        "SELECT person_id, email, nextval('counter') AS k FROM people",
        "SELECT person_id, email FROM people; SELECT 1",
        "SELECT person_id FROM no_such_people",
    ):
        assert failure(ledger, query, copy=True) == failure(ledger, query, copy=False)
    assert copies == [None, None]  # the long value and nextval: copies the source stopped; the others were streamed
    assert failure(ledger, long, copy=True) == "row 8: column 'note' holds 9000 characters; the limit is 8192"
    import psycopg2

    connection = psycopg2.connect(**connect_args(warehouse))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value, is_called FROM counter")
            assert cursor.fetchone() == (1, False)
    finally:
        connection.close()


def test_a_slow_copy_stops_at_timeout_seconds(ledger: dict[str, Any], copies: list[int | None]) -> None:
    """The copy's query is bound by the session's timeout, and the error says it was the timeout."""
    message = failure(ledger, "SELECT person_id, email, pg_sleep(0.1)::text AS s FROM people", copy=True, timeout=1)
    assert "canceling statement due to statement timeout" in message
    assert "ran longer than timeout_seconds: 1 s" in message
    assert copies == [None]


def test_the_constants_are_pythons_own() -> None:
    """The whitespace str.strip() takes and the letters str.lower() folds to ASCII, over every code point."""
    every = [chr(c) for c in range(0x110000)]
    assert "".join(c for c in every if c.isspace()) == snapshot_sql.WHITESPACE
    assert "".join(c for c in every if c != c.lower() and c.lower().isascii()) == snapshot_sql.UPPER


def test_the_ascii_email_pattern_is_is_email_address() -> None:
    """``hygiene.ASCII_EMAIL`` (the streamed path's shortcut) agrees with ``is_email_address`` on ASCII text."""
    rng = random.Random(7)
    alphabet = "aZ09.@-_ \t\"<>(),;:[]\\+'!#x"
    samples = [address.strip() for address in EMAILS if address and address.isascii()]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 14))) for _ in range(20_000)]
    samples += [f"{'a' * rng.randrange(60, 70)}@{'b' * rng.randrange(60, 66)}.{'c' * rng.randrange(1, 4)}"] * 50
    for address in samples:
        fast = len(address) <= 254 and ASCII_EMAIL.fullmatch(address) is not None
        assert fast == is_email_address(address), address


def reference_row(plan: SnapshotPlan, position: int, raw: dict[str, Any]) -> tuple[Any, ...]:
    """``SnapshotPlan.row`` as it was written first, one dict at a time: what the faster one must still give."""
    from campaign_runs.factory.hygiene import ADDRESS_FIELDS, address_problem, consents, normalised_address

    values = dict(raw)
    for name, column in plan.columns.items():
        values[name] = raw.get(column)
    recipient = "" if values.get("id") is None else str(values["id"]).strip()
    addresses = {kind: normalised_address(channel, values.get(kind)) for channel, kind in ADDRESS_FIELDS.items()}
    skips: dict[str, str | None] = {}
    for channel in ADDRESS_FIELDS:
        consent = plan.channel_consent.get(channel)
        if channel not in plan.channels:
            skips[channel] = None
        elif not recipient:
            skips[channel] = "no_id"
        elif (problem := address_problem(channel, addresses[ADDRESS_FIELDS[channel]])) is not None:
            skips[channel] = problem
        elif (plan.consent_column and not consents(raw.get(plan.consent_column))) or (
            consent and not consents(raw.get(consent))
        ):
            skips[channel] = "no_consent"
        else:
            skips[channel] = None
    for name in ("id", *addresses):
        values.pop(name, None)
    fields = json.dumps(values, ensure_ascii=False, default=str)
    return (position, recipient or f"#{position}", *addresses.values(), *skips.values(), fields)


def test_rows_are_cleaned_as_they_were_one_by_one() -> None:
    """Random rows under random plans: ``SnapshotPlan.row`` gives what the first, dict-by-dict version gave."""
    import datetime as dt
    import math

    rng = random.Random(11)
    names = ["person_id", "email", "mobile", "push_token", "opted_in", "sms_ok", "first_name", "id", "phone", "x"]
    pool = [
        *EMAILS,
        *PHONES,
        *TOKENS,
        *WORDS,
        *NOTES,
        0,
        1,
        2,
        -1,
        1.0,
        0.5,
        math.nan,
        True,
        False,
        dt.date(2026, 1, 2),
    ]
    for _ in range(3000):
        plan = SnapshotPlan(
            columns={field: rng.choice(names) for field in rng.sample(["id", "email", "phone", "push_token", "y"], 2)},
            channels=tuple(rng.sample(["email", "sms", "push"], rng.randrange(0, 4))),
            consent_column=rng.choice(["", "opted_in", "sms_ok", "missing"]),
            channel_consent={
                channel: rng.choice(["sms_ok", "x", "missing"]) for channel in rng.sample(["sms", "push"], 1)
            },
        )
        raw = {name: rng.choice(pool) for name in rng.sample(names, rng.randrange(0, len(names)))}
        position = rng.randrange(0, 50)
        assert plan.row(position, raw) == reference_row(plan, position, raw), (plan, raw)
