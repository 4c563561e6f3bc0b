"""The snapshot in PostgreSQL (the shared ledger's database): one streamed COPY, a source error as itself, and a
de-duplication that stays linear on a table whose statistics do not know the slot yet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.snapshot import META_TABLE, ROWS_TABLE, SnapshotStore
from campaign_runs.factory.sources import AudienceSourceError

from tests.support.ledger_db import connect_args, ledger_database

PLAN = SnapshotPlan(columns={"id": "customer"}, channels=("email", "sms"), consent_column="ok")


@pytest.fixture
def store() -> Iterator[SnapshotStore]:
    """A snapshot store in a fresh PostgreSQL database of its own (a table never analysed)."""
    with ledger_database("snapshot") as database, SnapshotStore.postgres_connection(connect_args(database)) as made:
        yield made


def customers(count: int, *, fail_after: int | None = None) -> Iterator[dict[str, Any]]:
    """``count`` source rows: every 3rd repeats an earlier id, every 5th an earlier address, every 7th refuses."""
    for n in range(count):
        if n == fail_after:
            raise AudienceSourceError(f"row {n + 1}: the source broke")
        yield {
            "customer": f"c{n - 1 if n % 3 == 2 else n}",
            "email": f"User{n - 1}@Example.com" if n % 5 == 4 else f"user{n}@example.com",
            "phone": f"+33 6 {n:08d}"[:17],
            "ok": n % 7 != 6,
            "first_name": "Inès",
        }


def test_a_source_error_mid_stream_is_raised_as_itself_and_leaves_no_row(store: SnapshotStore) -> None:
    """The COPY runs while the source is read: the source's error, not the COPY's, and nothing half written."""
    with pytest.raises(AudienceSourceError, match="row 12001: the source broke"):
        store.freeze("cr_snap", "slot-1", "run-1", "test", PLAN, customers(20_000, fail_after=12_000))
    assert store.execute(f"SELECT COUNT(*) FROM {META_TABLE}") == [(0,)]
    assert store.execute(f"SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '{ROWS_TABLE}%'") == [(0,)]
    assert store.info("cr_snap", "slot-1") is None


def test_every_slot_is_written_and_cleaned_in_linear_time(store: SnapshotStore) -> None:
    """Slots written one after the other (the statistics know none of them) are each de-duplicated in seconds."""
    size = 12_000
    expected: dict[str, int] | None = None
    for slot in ("slot-1", "slot-2", "slot-3"):
        started = time.monotonic()
        info = store.freeze("cr_snap", slot, f"run-{slot}", "test", PLAN, customers(size))
        assert time.monotonic() - started < 60, "the de-duplication went quadratic (a nested loop per row)"
        assert info.rows == size
        scope = store.scope("cr_snap", slot)
        reasons = dict(store.execute(f"SELECT COALESCE(skip_email, 'sent'), COUNT(*) FROM {scope.table} GROUP BY 1"))
        assert reasons["duplicate"] > 0 and reasons["no_consent"] > 0
        assert expected is None or reasons == expected, "each slot of the same rows is cleaned the same way"
        expected = reasons
    assert store.execute("SHOW enable_nestloop") == [("on",)], "the session setting is given back"


OLD_LAYOUT = [  # the tables as 0.7.0 and earlier created them: every snapshot in one table
    "CREATE TABLE campaign_audience_snapshot (campaign TEXT NOT NULL, slot TEXT NOT NULL, position INTEGER NOT NULL, "
    "recipient TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL, push_token TEXT NOT NULL, skip_email TEXT, "
    "skip_sms TEXT, skip_push TEXT, fields TEXT NOT NULL, PRIMARY KEY (campaign, slot, position))",
    "CREATE TABLE campaign_audience_snapshot_run (campaign TEXT NOT NULL, slot TEXT NOT NULL, source TEXT NOT NULL, "
    "run_id TEXT NOT NULL, row_count INTEGER NOT NULL, seconds REAL NOT NULL, complete INTEGER NOT NULL, "
    "created_at TEXT NOT NULL, PRIMARY KEY (campaign, slot))",
]


def test_snapshots_of_the_shared_table_layout_move_to_a_table_each() -> None:
    """A ledger written by 0.7.0: each complete snapshot keeps its rows (a restart reaches the same people), a
    snapshot cut short is dropped, and the shared table is gone."""
    import psycopg2
    from campaign_runs.factory.snapshot_audience import SnapshotAudience

    with ledger_database("snapshot_move") as database:
        old = psycopg2.connect(**connect_args(database))
        old.autocommit = True
        with old.cursor() as cursor:
            for statement in OLD_LAYOUT:
                cursor.execute(statement)
            for campaign, slot, count in (("cr_a", "slot-1", 3), ("cr_a", "slot-2", 2), ("cr_b", "slot-1", 4)):
                for n in range(count):
                    skip = "no_consent" if n == 1 else None
                    cursor.execute(
                        "INSERT INTO campaign_audience_snapshot VALUES (%s, %s, %s, %s, %s, '', '', %s, NULL, NULL, "
                        "%s)",
                        (campaign, slot, n, f"{campaign}-{n}", f"{slot}.{n}@example.org", skip, f'{{"n": {n}}}'),
                    )
                cursor.execute(
                    "INSERT INTO campaign_audience_snapshot_run VALUES (%s, %s, 'test', 'run', %s, 0.5, 1, 'now')",
                    (campaign, slot, count),
                )
            cursor.execute(
                "INSERT INTO campaign_audience_snapshot VALUES ('cr_c', 's', 0, 'x', '', '', '', "
                "NULL, NULL, NULL, '{}')"
            )  # cut short: rows without a record
        old.close()
        with SnapshotStore.postgres_connection(connect_args(database)) as store:
            assert store.execute("SELECT to_regclass('campaign_audience_snapshot') IS NULL") == [(True,)]
            audience = SnapshotAudience(store, "cr_a", "slot-1", "email", 3)
            sent = [recipient for batch in audience.batches(10) for recipient in batch]
            assert [(r.id, r.email, r.values) for r in sent] == [
                ("cr_a-0", "slot-1.0@example.org", {"n": 0}),
                ("cr_a-2", "slot-1.2@example.org", {"n": 2}),
            ]
            assert audience.skipped() == {"no_consent": 1}
            b_batches = list(SnapshotAudience(store, "cr_b", "slot-1", "email", 4).batches(10))
            assert [len(batch) for batch in b_batches] == [3]
            assert store.info("cr_a", "slot-2") is not None and store.drop("cr_a") == 5
            assert store.execute(f"SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '{ROWS_TABLE}%'") == [(1,)]
        with SnapshotStore.postgres_connection(connect_args(database)) as again:  # moved once: opening again is a no-op
            assert again.info("cr_b", "slot-1") is not None
