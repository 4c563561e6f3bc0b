"""The per-slot audience snapshot, on both of the ledger's databases: a SQLite file and PostgreSQL (COPY).

A slot's source is read once, in chunks, into the snapshot; hygiene (addresses, consent, duplicates) is decided
while writing; a restart of the slot reads the snapshot, never the source, so it reaches exactly the people of
the first read even after the source table changed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from campaign_runs.factory import snapshot, snapshot_copy
from campaign_runs.factory.documents import load_yaml
from campaign_runs.factory.factory import build_audience
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.snapshot import SnapshotStore, open_snapshots
from campaign_runs.factory.snapshot_audience import SnapshotAudience
from campaign_runs.factory.sources import AudienceSourceError
from campaign_runs.factory.spec import parse_spec

from tests.support.ledger_db import connect_args, connection_uri, ledger_database
from tests.support.snapshots import snapshot_rows

PLAN = SnapshotPlan(
    columns={"id": "person_id", "phone": "mobile"},
    channels=("email", "sms", "push"),
    consent_column="opted_in",
    channel_consent={"sms": "sms_ok"},
)
SNAPSHOT_COLUMNS = "position, recipient, email, phone, push_token, skip_email, skip_sms, skip_push, fields"


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """This module's own PostgreSQL ledger database, dropped at the end."""
    with ledger_database("snapshot") as name:
        yield name


@dataclass
class Backend:
    """One of the ledger's databases: ``open()`` a snapshot store; ``query()`` it from a connection of its own."""

    name: str
    open: Callable[[], SnapshotStore]
    connect: Callable[[], Any]

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``statement`` (``?`` placeholders), read over a new connection."""
        connection = self.connect()
        try:
            cursor = connection.cursor()
            cursor.execute(statement.replace("?", "%s") if self.name == "postgres" else statement, params)
            return list(cursor.fetchall())
        finally:
            connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The snapshot store on a SQLite file or on this module's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "c" / "ledger.sqlite"
        return Backend("sqlite", lambda: SnapshotStore.sqlite(path), lambda: sqlite3.connect(path))
    import psycopg2

    args = connect_args(request.getfixturevalue("pg_database"))
    return Backend("postgres", lambda: SnapshotStore.postgres_connection(args), lambda: psycopg2.connect(**args))


def person(n: int, **values: Any) -> dict[str, Any]:
    """A source row: good addresses and consent unless ``values`` say otherwise."""
    row = {
        "person_id": f"p{n}",
        "email": f"p{n}@example.org",
        "mobile": f"+3361000{n:04d}",
        "push_token": f"tok-{n}",
        "opted_in": True,
        "sms_ok": "yes",
        "first_name": f"Name{n}",
    }
    return {**row, **values}


def rows_received(backend: Backend, campaign: str, slot: str) -> int:
    """Snapshot rows of the slot the database holds, seen from another connection: committed (SQLite: a transaction
    per chunk), or counted by the COPY still in progress (PostgreSQL: one transaction for the snapshot's table)."""
    if backend.name == "postgres":
        [(copying,)] = backend.query(
            "SELECT COALESCE(SUM(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname = current_database()"
        )
        return int(copying)
    [(committed,)] = backend.query(
        f"SELECT COUNT(*) FROM {snapshot.SNAPSHOT_TABLE} WHERE campaign=? AND slot=?", (campaign, slot)
    )
    return int(committed)


def test_the_snapshot_is_written_in_chunks_while_the_source_streams(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than CHUNK_ROWS: each chunk reaches the database while the source is still being read; duplicates
    are found across chunks; a second freeze of the slot reuses the snapshot without reading the source."""
    monkeypatch.setattr(snapshot, "CHUNK_ROWS", 4)
    monkeypatch.setattr(snapshot_copy, "CHUNK_ROWS", 4)
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    store = backend.open()
    seen_by_database: dict[int, int] = {}
    given = 0

    def source(count: int) -> Iterator[dict[str, Any]]:
        nonlocal given
        for n in range(count):
            if n and n % 4 == 0:  # the chunk before this row was full: the database must have it by now
                deadline = time.monotonic() + 5
                while (stored := rows_received(backend, campaign, "slot-1")) < n and time.monotonic() < deadline:
                    time.sleep(0.02)
                seen_by_database[n] = stored
            given += 1
            pad = "x" * 3000  # a chunk of 4 is more than libpq's 8 kB output buffer: sent, not held back
            yield person(n, email=f"p{n % 7}@Example.org" if n >= 7 else f"p{n}@example.org", pad=pad)

    with store:
        info = store.freeze(campaign, "slot-1", "run-1", "test rows", PLAN, source(10))
        assert (info.rows, info.reused, info.source) == (10, False, "test rows")
        assert seen_by_database == {4: 4, 8: 8}
        rows = snapshot_rows(store, campaign, "slot-1")
        assert [row[0] for row in rows] == list(range(10))
        assert [row[5] for row in rows][7:] == ["duplicate"] * 3  # p0..p2 again, in the third chunk

    untouched = source(99)
    with backend.open() as again:
        reused = again.freeze(campaign, "slot-1", "run-2", "test rows", PLAN, untouched)
        assert (reused.rows, reused.reused) == (10, True)
        assert given == 10  # the source was not read again
        assert again.slots(campaign) == [("slot-1", "run-1")]


def test_a_snapshot_cut_short_is_written_anew(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source failing half-way leaves no complete snapshot; the next read replaces the partial one whole."""
    monkeypatch.setattr(snapshot, "CHUNK_ROWS", 2)
    monkeypatch.setattr(snapshot_copy, "CHUNK_ROWS", 2)

    def failing() -> Iterator[dict[str, Any]]:
        yield from (person(n) for n in range(5))
        raise AudienceSourceError("line 7 is not UTF-8")

    with backend.open() as store, pytest.raises(AudienceSourceError):
        store.freeze("c", "slot-cut", "run-1", "file", PLAN, failing())
    with backend.open() as store:
        assert store.info("c", "slot-cut") is None
        info = store.freeze("c", "slot-cut", "run-2", "file", PLAN, (person(n) for n in range(3)))
        assert (info.rows, info.reused) == (3, False)
        assert [row[1] for row in snapshot_rows(store, "c", "slot-cut")] == ["p0", "p1", "p2"]


HYGIENE_ROWS = [
    person(0, mobile="+33 6 12 34 56 78"),
    person(1, email="P0@Example.ORG"),  # the email of row 0, in other case
    person(0, email="other@example.org", mobile="+33622222222", push_token="tok-x"),  # the recipient id of row 0
    person(3, email="not-an-address"),
    person(4, mobile="0612345678"),  # not E.164
    person(5, push_token=""),
    person(6, opted_in=False),  # the audience's consent column
    person(7, sms_ok="no"),  # the sms channel's own consent column
    person(8, person_id=None),
    person(9, email=" p9@example.org ", mobile="+33 (6) 12-34-56-78", push_token="tok-0"),  # row 0's phone and token
    person(10, mobile=None, push_token="tok\n10"),
    person(11, opted_in="maybe"),  # unclear is no
]
EXPECTED_SKIPPED = {
    "email": {"duplicate": 2, "invalid_address": 1, "no_consent": 2, "no_id": 1},
    "sms": {"duplicate": 2, "invalid_address": 1, "no_consent": 3, "no_id": 1, "no_address": 1},
    "push": {"duplicate": 2, "no_address": 1, "no_consent": 2, "no_id": 1, "invalid_address": 1},
}
EXPECTED_SENT_TO = {
    "email": ["p0", "p4", "p5", "p7", "p9", "p10"],
    "sms": ["p0", "p1", "p3", "p5"],
    "push": ["p0", "p1", "p3", "p4", "p7"],
}


def test_hygiene_skips_and_counts_each_reason_per_channel(backend: Backend) -> None:
    """Duplicates (email in any case, recipient id, normalised phone, token), invalid and missing addresses, consent."""
    with backend.open() as store:
        info = store.freeze("c", "slot-h", "run-1", "rows", PLAN, iter(HYGIENE_ROWS))
        assert info.rows == len(HYGIENE_ROWS)
        for channel, skipped in EXPECTED_SKIPPED.items():
            audience = SnapshotAudience(store, "c", "slot-h", channel, info.rows)
            assert audience.skipped() == skipped, channel
            sent_to = [r for batch in audience.batches(2) for r in batch]
            assert [r.id for r in sent_to] == EXPECTED_SENT_TO[channel], channel
            assert audience.eligible() == len(EXPECTED_SENT_TO[channel])
        email = {r.id: r for r in SnapshotAudience(store, "c", "slot-h", "email", info.rows).at([0, 9])}
        assert email["p9"].email == "p9@example.org"  # trimmed
        assert email["p0"].phone == "+33612345678"  # without punctuation
        assert email["p0"].fields()["first_name"] == "Name0" and email["p0"].values["person_id"] == "p0"
        assert "id" not in email["p0"].values and "email" not in email["p0"].values


TRICKY_ROWS = [
    person(0, first_name='O"Brien, Jr', note="two\nlines\r\nand a tab\t", path="C:\\N\\.", empty=""),
    person(1, first_name=None, score=1.5, big=2**62, vip=False, nan=math.nan, when=dt.date(2026, 1, 2)),
    person(2, email="JOSÉ@exämple.org", first_name="José 🎉"),
    person(3, email="josé@exämple.org"),  # row 2's address in lower case
    person(4, email="ÅSA@EXAMPLE.ORG"),
    person(5, email="åsa@example.org", push_token=None, mobile=""),
    person(6, email="", first_name="\\N"),
    person(7, person_id='p,7 "quoted"', email="p7@example.org"),
]


def test_postgresql_copy_gives_the_same_snapshot_as_sqlite(tmp_path: Path, pg_database: str) -> None:
    """Quotes, commas, newlines, backslashes, NULL against empty text, Unicode in any case: the same rows."""
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    with SnapshotStore.sqlite(tmp_path / campaign / "ledger.sqlite") as local:
        local.freeze(campaign, "slot", "run-1", "rows", PLAN, iter(TRICKY_ROWS))
        on_sqlite = snapshot_rows(local, campaign, "slot")
    with SnapshotStore.postgres_connection(connect_args(pg_database)) as shared:
        shared.freeze(campaign, "slot", "run-1", "rows", PLAN, iter(TRICKY_ROWS))
        on_postgres = snapshot_rows(shared, campaign, "slot")
    assert on_postgres == on_sqlite
    by_position = {row[0]: row for row in on_sqlite}
    assert json.loads(by_position[0][8])["note"] == "two\nlines\r\nand a tab\t"
    assert json.loads(by_position[1][8])["first_name"] is None and json.loads(by_position[0][8])["empty"] == ""
    assert by_position[7][1] == 'p,7 "quoted"'
    assert [by_position[p][5] for p in (2, 3, 4, 5, 6)] == [None, "duplicate", None, "duplicate", "no_address"]


# --- build_audience: the run's slot, its snapshot, a restart ----------------------------------------------------

CAMPAIGN = """
id: snap_news
description: Newsletter to the members table.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {cron: null, timezone: UTC, start_date: 2025-01-01}
audience:
  source: sql
  conn_id: members_db
  query: >-
    SELECT member_id, email, phone, first_name FROM members
    WHERE joined <= :logical_date AND country = :country ORDER BY member_id
  columns: {id: member_id}
channels:
  email: {subject: "Hi $first_name", body: "News", batch_size: 2}
  sms: {text: "News for $first_name", batch_size: 2}
"""
SLOT_TIME = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)


@pytest.fixture
def members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite ``members`` table behind Connection ``members_db``."""
    path = tmp_path / "members.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE members (member_id TEXT, email TEXT, phone TEXT, first_name TEXT, joined TEXT, country)"
        )
        db.executemany(
            "INSERT INTO members VALUES (?, ?, ?, ?, '2026-01-01', ?)",
            [(f"m{n}", f"m{n}@example.org", f"+3361234000{n}", f"M{n}", "FR" if n < 6 else "DE") for n in range(8)],
        )
    monkeypatch.setenv("AIRFLOW_CONN_MEMBERS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_conn(request: pytest.FixtureRequest, sink_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``[campaign_runs] ledger_conn_id``: none (SQLite files under the sink dir) or a PostgreSQL Connection."""
    if request.param == "sqlite":
        monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID", raising=False)
        return ""
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_LEDGER_SNAP", connection_uri(request.getfixturevalue("pg_database")))
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID", "campaign_ledger_snap")
    return "campaign_ledger_snap"


def spec_of(folder: Path, text: str = CAMPAIGN, campaign: str = "") -> Any:
    """The campaign spec of YAML ``text`` (under a fresh id when given one)."""
    data = load_yaml(text)
    if campaign:
        data["id"] = campaign
    return parse_spec(data, folder / f"{data['id']}.yaml")


def run_context(
    run_id: str, logical_date: dt.datetime | None, *, conf: dict[str, Any] | None = None, **params: Any
) -> dict[str, Any]:
    """The parts of a task context build_audience reads."""
    dag_run = SimpleNamespace(
        run_id=run_id,
        conf=conf or {},
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_type="manual",
        run_after=logical_date,
    )
    return {"dag_run": dag_run, "params": {**(conf or {}), **params}}


def restart_conf(of: str, when: dt.datetime) -> dict[str, Any]:
    """A Restart's conf (as ``campaign_runs.core.actions`` builds it): the restarted run and its slot."""
    iso = when.isoformat()
    return {
        "campaign_restart_of": of,
        "campaign_slot": {"logical_date": iso, "data_interval_start": iso, "data_interval_end": iso},
    }


def reached(spec: Any, plan: dict[str, Any], channel: str, sink_dir: Path, conn_id: str) -> list[tuple[str, str]]:
    """(recipient id, address) of everyone channel ``channel`` of the run sends to, read from the snapshot."""
    address = "email" if channel == "email" else "phone"
    with open_snapshots(spec.id, sink_dir=sink_dir, conn_id=conn_id) as store:
        audience = SnapshotAudience(store, spec.id, plan["slot_key"], channel, plan["size"])
        return [(r.id, getattr(r, address)) for batch in audience.batches(3) for r in batch]


def test_a_restart_after_the_source_changed_reaches_exactly_the_first_snapshot(
    tmp_path: Path, members: Path, sink_dir: Path, ledger_conn: str
) -> None:
    """Rows added, removed and changed after the first read: the restart's people are the first read's, all of them."""
    spec = spec_of(tmp_path, campaign=f"snap_{uuid.uuid4().hex[:8]}")
    first = build_audience(spec, run_context("manual__first", SLOT_TIME, country="FR"))
    assert first["size"] == 6 and first["snapshot"]["reused"] is False
    assert first["slot_key"] == "logical:2026-03-02T10:00:00+00:00"
    first_people = {channel: reached(spec, first, channel, sink_dir, ledger_conn) for channel in ("email", "sms")}
    assert [rid for rid, _ in first_people["email"]] == [f"m{n}" for n in range(6)]

    with sqlite3.connect(members) as db:
        db.execute("DELETE FROM members WHERE member_id IN ('m1', 'm4')")
        db.execute("UPDATE members SET email = 'changed@example.org', phone = '+33699999999' WHERE member_id = 'm2'")
        db.executemany(
            "INSERT INTO members VALUES (?, ?, ?, 'New', '2026-01-01', 'FR')",
            [(f"n{n}", f"n{n}@example.org", f"+3369876000{n}") for n in range(3)],
        )

    restart = build_audience(
        spec, run_context("manual__restart", None, conf=restart_conf("manual__first", SLOT_TIME), country="FR")
    )
    assert restart["slot_key"] == first["slot_key"] and restart["restart_of"] == "manual__first"
    assert restart["size"] == 6 and restart["snapshot"]["reused"] is True
    for channel in ("email", "sms"):
        assert reached(spec, restart, channel, sink_dir, ledger_conn) == first_people[channel], channel

    next_slot = build_audience(spec, run_context("manual__next", SLOT_TIME + dt.timedelta(days=1), country="FR"))
    ids = [rid for rid, _ in reached(spec, next_slot, "email", sink_dir, ledger_conn)]
    assert ids == ["m0", "m2", "m3", "m5", "n0", "n1", "n2"]  # a new slot reads the source as it is now
    assert ("m2", "changed@example.org") in reached(spec, next_slot, "email", sink_dir, ledger_conn)


def test_build_audience_binds_the_slot_and_params_and_fails_with_the_source_message(
    tmp_path: Path, members: Path, sink_dir: Path
) -> None:
    """A run param picks the rows; a query error or an unknown Connection fails the task with the database's words."""
    from airflow.sdk.exceptions import AirflowFailException

    spec = spec_of(tmp_path)
    german = build_audience(spec, run_context("manual__de", SLOT_TIME, country="DE"))
    assert (german["size"], german["label"]) == (2, "SQL query on Connection members_db")
    before_anyone = build_audience(
        spec, run_context("manual__early", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), country="FR")
    )
    assert before_anyone["size"] == 0  # joined <= :logical_date matches nobody: an empty audience, not an error

    broken = spec_of(tmp_path, CAMPAIGN.replace("FROM members", "FROM no_such_members"), campaign="snap_broken")
    with pytest.raises(AirflowFailException, match=r"\(SQL query on Connection members_db\): .*no such table"):
        build_audience(broken, run_context("manual__broken", SLOT_TIME, country="FR"))
    nowhere = spec_of(tmp_path, CAMPAIGN.replace("conn_id: members_db", "conn_id: nowhere_db"), campaign="snap_x")
    with pytest.raises(AirflowFailException, match="the Connection 'nowhere_db' does not exist"):
        build_audience(nowhere, run_context("manual__nowhere", SLOT_TIME, country="FR"))
    with open_snapshots("snap_broken", sink_dir=sink_dir) as store:
        assert store.slots("snap_broken") == []  # a failed read leaves no snapshot a restart would reuse
