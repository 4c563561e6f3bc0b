"""The delivery ledger, one test body per behaviour run on both backends: a SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from campaign_runs.factory.ledger import DeliveryLedger, PostgresLedger, SqliteLedger

from tests.campaign_runs.factory.test_audience import plan
from tests.support.ledger_db import connect_args, ledger_database

OpenLedger = Callable[[str, str], DeliveryLedger]


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """This module's own PostgreSQL database, dropped at the end."""
    with ledger_database("unit") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> OpenLedger:
    """Opens ledgers (each its own connection, like separate processes) of one fresh campaign on one backend."""
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        return lambda slot, channel: SqliteLedger(tmp_path / campaign / "ledger.sqlite", campaign, slot, channel)
    args = connect_args(request.getfixturevalue("pg_database"))
    return lambda slot, channel: PostgresLedger(args, campaign, slot, channel)


def test_record_and_lookup(open_ledger: OpenLedger) -> None:
    """Recorded recipients are found again; duplicates are ignored; other slots and channels are separate."""
    recipients = list(plan(20).recipients())
    with open_ledger("slot-a", "email") as ledger:
        assert ledger.record(recipients[:8], "run-1") == 8
        assert ledger.record(recipients[5:10], "run-2") == 2
        assert ledger.reached_count(20) == 10
        assert ledger.reached_count(6) == 6
        assert ledger.already_reached([r.id for r in recipients]) == {r.id for r in recipients[:10]}
        assert ledger.runs() == {"run-1": 8, "run-2": 2}
    with open_ledger("slot-b", "email") as other_slot:
        assert other_slot.reached_count(20) == 0
    with open_ledger("slot-a", "sms") as other_channel:
        assert other_channel.already_reached([r.id for r in recipients]) == set()


def test_lookup_in_chunks(open_ledger: OpenLedger) -> None:
    """Lookups of more ids than one SQL statement holds still answer exactly."""
    recipients = list(plan(1500, population=5000).recipients())
    with open_ledger("s", "push") as ledger:
        ledger.record(recipients[::3], "run")
        assert len(ledger.already_reached([r.id for r in recipients])) == 500


def test_claim_then_confirm_or_release(open_ledger: OpenLedger) -> None:
    """A claim writes a committed pending row; the next claim confirms or releases the previous one atomically."""
    a, b, c = list(plan(3).recipients())
    with open_ledger("s", "email") as ledger:
        assert ledger.claim(a, "run-1")
        with open_ledger("s", "email") as other_process:
            assert other_process.in_doubt() == [a.id]
            assert not other_process.claim(a, "run-2"), "a pending recipient is nobody else's to send"
        assert ledger.claim(b, "run-1", confirm=[a.id])
        assert ledger.claim(c, "run-1", release=[b.id])
        assert (ledger.counts(3).sent, ledger.counts(3).in_doubt) == (1, 1)
        assert ledger.in_doubt() == [c.id]
        assert ledger.already_reached([a.id, b.id, c.id]) == {a.id, c.id}
        ledger.settle(confirm=[c.id])
        assert (ledger.counts(3).sent, ledger.counts(3).in_doubt) == (2, 0)
        assert ledger.runs() == {"run-1": 2}
        ledger.settle(release=[a.id])
        assert ledger.counts(3).sent == 2, "release touches pending rows only"


def test_a_failed_transaction_commits_nothing(open_ledger: OpenLedger) -> None:
    """A claim whose transaction fails midway leaves the earlier outcomes unsettled and no new row."""
    a, b = list(plan(2).recipients())
    with open_ledger("s", "sms") as ledger:
        assert ledger.claim(a, "run-1")
        with pytest.raises(AttributeError):
            ledger.claim(None, "run-1", confirm=[a.id])  # type: ignore[arg-type]
        assert ledger.in_doubt() == [a.id]
        assert ledger.claim(b, "run-1", confirm=[a.id])
        assert (ledger.counts(2).sent, ledger.counts(2).in_doubt) == (1, 1)


def test_postgres_claim_and_settle_are_one_statement_each(pg_database: str) -> None:
    """On PostgreSQL a claim (with earlier outcomes to settle) and a settle are one round trip each."""
    executed: list[str] = []
    a, b, c, d = plan(4).recipients()
    with PostgresLedger(connect_args(pg_database), f"c-{uuid.uuid4().hex[:8]}", "s", "email") as ledger:
        assert ledger.claim(a, "run-1") and ledger.claim(b, "run-1", confirm=[a.id])
        real = ledger.connection

        class CountingCursor:
            """A cursor that writes down every statement it executes."""

            def __init__(self) -> None:
                self.cursor = real.cursor()
                self.close = self.cursor.close

            @property
            def rowcount(self) -> int:
                return int(self.cursor.rowcount)

            def execute(self, sql: str, params: object = None) -> None:
                executed.append(sql)
                self.cursor.execute(sql, params)

        class Counting:
            """The connection, its cursors counting."""

            def cursor(self) -> CountingCursor:
                return CountingCursor()

        ledger.connection = Counting()
        assert ledger.claim(c, "run-1", confirm=[b.id], release=[]) and len(executed) == 1
        assert ledger.claim(d, "run-1", release=[c.id]) and len(executed) == 2
        ledger.settle(confirm=[d.id])
        assert len(executed) == 3
        ledger.connection = real
        assert ledger.runs() == {"run-1": 3} and ledger.in_doubt() == []
        assert not ledger.claim(a, "run-2"), "a confirmed recipient is never claimed again"


def test_reclaim_takes_a_doubtful_row_once(open_ledger: OpenLedger) -> None:
    """Recipients in doubt are listed with the run holding them; a re-claim is a compare-and-set on that run."""
    a, b, c = list(plan(3).recipients())
    with open_ledger("s", "email") as first:
        first.claim(a, "run-1")
        first.claim(b, "run-1", confirm=[a.id])
        first.claim(c, "run-1", confirm=[b.id])
    with open_ledger("s", "email") as second, open_ledger("s", "email") as third:
        assert second.doubtful("run-2", 3) == [(2, "run-1")]
        assert second.doubtful("run-2", 2) == [], "only the run's audience"
        assert third.doubtful("run-3", 3) == [(2, "run-1")]
        assert second.reclaim(c, "run-2", claimed_by="run-1")
        assert not third.reclaim(c, "run-3", claimed_by="run-1"), "the row moved on: run-3 lost the race"
        assert not second.reclaim(a, "run-2", claimed_by="run-1"), "a sent row is never re-claimed"
        assert second.doubtful("run-2", 3) == []
        assert third.doubtful("run-3", 3) == [(2, "run-2")]
        second.settle(confirm=[c.id])
        assert third.doubtful("run-3", 3) == []
        assert third.runs() == {"run-1": 2, "run-2": 1}


def test_racing_reclaimers_never_both_win(open_ledger: OpenLedger) -> None:
    """Two connections re-claiming the same 200 doubtful rows at once: every row is won by exactly one."""
    recipients = list(plan(200).recipients())
    with open_ledger("race", "email") as crashed:
        for recipient in recipients:
            assert crashed.claim(recipient, "crashed")
    wins: dict[str, list[str]] = {"run-a": [], "run-b": []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def reclaim_all(run_id: str) -> None:
        try:
            with open_ledger("race", "email") as ledger:
                start.wait()
                wins[run_id] = [r.id for r in recipients if ledger.reclaim(r, run_id, claimed_by="crashed")]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reclaim_all, args=(run_id,)) for run_id in wins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(wins["run-a"] + wins["run-b"]) == sorted(r.id for r in recipients)
    with open_ledger("race", "email") as ledger:
        assert ledger.doubtful("someone-else", 200) == sorted(
            [(r.position, "run-a" if r.id in wins["run-a"] else "run-b") for r in recipients]
        )


def test_sqlite_ledger_written_before_pending_rows_still_reads(tmp_path: Path) -> None:
    """A SQLite ledger file without the status column gains it; its rows count as sent."""
    import sqlite3

    path = tmp_path / "c" / "ledger.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE deliveries (campaign TEXT NOT NULL, slot TEXT NOT NULL, channel TEXT NOT NULL, "
            "recipient TEXT NOT NULL, position INTEGER NOT NULL, run_id TEXT NOT NULL, sent_at TEXT NOT NULL, "
            "PRIMARY KEY (campaign, slot, channel, recipient))"
        )
        old.execute("INSERT INTO deliveries VALUES ('c', 's', 'sms', 'seg-1', 0, 'old', 'now')")
    old.close()
    with SqliteLedger(path, "c", "s", "sms") as ledger:
        assert (ledger.counts(10).sent, ledger.counts(10).in_doubt) == (1, 0)


def test_open_ledger_uses_the_connection_when_configured(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Connection id: the SQLite file under the sink dir; a Connection id: its PostgreSQL database."""
    from campaign_runs.factory.ledger import open_ledger

    from tests.support.ledger_db import connection_uri, ledger_rows

    with open_ledger("c", "s", "sms", sink_dir=tmp_path) as local:
        assert isinstance(local, SqliteLedger)
        assert local.path == tmp_path / "c" / "ledger.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_LEDGER_TEST", connection_uri(pg_database))
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    with open_ledger(campaign, "s", "sms", sink_dir=tmp_path, conn_id="campaign_ledger_test") as shared:
        assert isinstance(shared, PostgresLedger)
        shared.claim(next(plan(1).recipients()), "run-1")
    assert [row[2:] for row in ledger_rows(pg_database, "campaign=%s", (campaign,))] == [("run-1", "pending")]


def test_connect_args_refuse_a_connection_that_is_not_postgres() -> None:
    """Only a postgres Connection can hold the ledger; its libpq options come from the extra."""
    from airflow.sdk import Connection
    from campaign_runs.factory.ledger import connect_args

    pg = Connection(
        conn_id="l",
        conn_type="postgres",
        host="db",
        port=5433,
        schema="ledger",
        login="u",
        extra='{"sslmode": "require"}',
    )
    assert connect_args(pg) == {"host": "db", "port": 5433, "dbname": "ledger", "user": "u", "sslmode": "require"}
    with pytest.raises(ValueError, match="must be of type postgres"):
        connect_args(Connection(conn_id="l", conn_type="mysql", host="db"))
