"""The factory's SQLite files opened by several tasks at the same moment (shards and channels of a first run)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory.ledger import SqliteLedger
from campaign_runs.factory.snapshot import SnapshotStore
from campaign_runs.factory.suppression import SuppressionList

OPENERS: dict[str, Callable[[Path], Any]] = {
    "ledger": lambda path: SqliteLedger(path, "c", "slot", "email"),
    "snapshot": SnapshotStore.sqlite,
    "suppression": SuppressionList.sqlite,
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_a_new_file_opened_by_two_tasks_at_once_opens_for_both(tmp_path: Path, kind: str) -> None:
    """Forty new files, each opened by two threads together: SQLite's immediate "database is locked" is waited out."""
    errors: list[BaseException] = []

    def open_and_close(path: Path, start: threading.Barrier) -> None:
        try:
            start.wait()
            OPENERS[kind](path).close()
        except BaseException as error:
            errors.append(error)

    for attempt in range(40):
        start = threading.Barrier(2)
        path = tmp_path / str(attempt) / "ledger.sqlite"
        threads = [threading.Thread(target=open_and_close, args=(path, start)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
