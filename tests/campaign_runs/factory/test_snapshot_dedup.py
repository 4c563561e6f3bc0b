"""Duplicates in a PostgreSQL snapshot (``snapshot_dedup``): the sorts on connections of their own skip exactly the
rows the one-pass-after-another ranking skips, which a SQLite ledger still runs."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory import snapshot_dedup
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.snapshot import SnapshotStore

from tests.support.ledger_db import connect_args, ledger_database
from tests.support.snapshots import snapshot_rows

PLAN = SnapshotPlan(columns={"id": "person", "phone": "mobile"}, channels=("email", "sms", "push"), consent_column="ok")


def people(seed: int, count: int) -> list[dict[str, Any]]:
    """Rows drawn from small pools: ids, addresses and tokens shared across rows in every combination."""
    rng = random.Random(seed)
    ids = ["p1", "p2", " p2 ", "p3", "P3", "", None, "p4"]
    emails = ["a@x.org", "A@X.org", "b@x.org", " b@x.org", "c@x.org", "bad", "", None, "é@x.org"]
    phones = ["+33612345678", "+33 6 12 34 56 78", "+441234567890", "0612", None]
    tokens = ["t1", "T1", "t2", "t\n3", "", None]
    return [
        {
            "person": rng.choice(ids),
            "email": rng.choice(emails),
            "mobile": rng.choice(phones),
            "push_token": rng.choice(tokens),
            "ok": rng.random() > 0.2,
        }
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def ledger() -> Iterator[dict[str, Any]]:
    """The PostgreSQL ledger database's connection arguments."""
    with ledger_database("snapshot_dedup") as name:
        yield connect_args(name)


def frozen(store: SnapshotStore, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The snapshot rows of ``rows`` frozen into ``store`` (then dropped)."""
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    store.freeze(campaign, "slot", "run", "test", PLAN, rows)
    found = snapshot_rows(store, campaign, "slot")
    store.drop(campaign)
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parallel_sorts_skip_what_one_pass_after_another_skips(
    ledger: dict[str, Any], tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows into SQLite (passes one after another), PostgreSQL on one connection, and on several."""
    rows = people(seed, 400)
    with SnapshotStore.sqlite(tmp_path / "ledger.sqlite") as store:
        expected = frozen(store, rows)
    opened: list[int] = []
    original = SnapshotStore.postgres_connect

    def counted(args: dict[str, Any]) -> Any:
        opened.append(1)
        return original(args)

    monkeypatch.setattr(SnapshotStore, "postgres_connect", staticmethod(counted))
    with SnapshotStore.postgres_connection(ledger) as store:
        opened.clear()
        assert frozen(store, rows) == expected
        assert len(opened) == 4, "a connection per channel's sort, and one building the primary key"
        store.connect_args = None  # no way to open another: every sort on the store's connection
        assert frozen(store, rows) == expected
        assert len(opened) == 4
        left = store.execute("SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE '%\\_dup\\_%'")
    assert left == [(0,)]
    skips = {reason for row in expected for reason in row[5:8]}
    assert {"duplicate", "no_id", "invalid_address", "no_address", "no_consent", None} <= skips


def test_a_failing_sort_leaves_no_scratch_table(ledger: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A sort failing on another connection fails the snapshot, and the scratch tables are dropped."""
    original = snapshot_dedup._run

    def failing(connection: Any, statement: str, failures: list[BaseException]) -> None:
        original(connection, "SELECT 1 / 0", failures)

    monkeypatch.setattr(snapshot_dedup, "_run", failing)
    with SnapshotStore.postgres_connection(ledger) as store:
        with pytest.raises(Exception, match="division by zero"):
            store.freeze("c-failing", "slot", "run", "test", PLAN, people(4, 50))
        assert store.execute("SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE 'campaign_audience_rows%'") == [(0,)]
