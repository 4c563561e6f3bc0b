"""The snapshot in PostgreSQL (the shared ledger's database): one streamed COPY, a source error as itself, and a
de-duplication that stays linear on a table whose statistics do not know the slot yet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.snapshot import SNAPSHOT_TABLE, SnapshotStore
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
    assert store.execute(f"SELECT COUNT(*) FROM {SNAPSHOT_TABLE}") == [(0,)]
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
        reasons = dict(
            store.execute(
                f"SELECT COALESCE(skip_email, 'sent'), COUNT(*) FROM {SNAPSHOT_TABLE} WHERE slot=? GROUP BY 1", (slot,)
            )
        )
        assert reasons["duplicate"] > 0 and reasons["no_consent"] > 0
        assert expected is None or reasons == expected, "each slot of the same rows is cleaned the same way"
        expected = reasons
    assert store.execute("SHOW enable_nestloop") == [("on",)], "the session setting is given back"
