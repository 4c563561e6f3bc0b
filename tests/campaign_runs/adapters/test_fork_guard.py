"""The fork guard: a fork waits for a housekeeper pass, and children forked beside SQLite work can use SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

from campaign_runs.adapters import fork_guard


def fork_child(body: str, path: Path | None = None) -> int:
    """Fork; the child runs ``body`` (``open-sqlite`` or ``take-guard``) under a 10 s alarm; its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no cleanup, just the one check
        signal.alarm(10)  # a deadlocked child is killed by SIGALRM instead of hanging the test
        try:
            if body == "open-sqlite":
                connection = sqlite3.connect(path or ":memory:", timeout=1)
                connection.execute("SELECT count(*) FROM t").fetchall()
                connection.close()
            else:
                with fork_guard.held():
                    pass
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return status


def test_a_fork_waits_until_the_thread_holding_the_guard_lets_go() -> None:
    """A pass holds the guard: the fork starts only after the pass ended, and the child can take the guard."""
    fork_guard.install()
    entered, ended_at = threading.Event(), []

    def housekeeping_pass() -> None:
        with fork_guard.held():
            entered.set()
            time.sleep(0.3)
            ended_at.append(time.monotonic())

    worker = threading.Thread(target=housekeeping_pass)
    worker.start()
    entered.wait(5)
    status = fork_child("take-guard")
    forked_at = time.monotonic()
    worker.join()
    assert status == 0, "the child's guard is free"
    assert ended_at and forked_at >= ended_at[0], "the fork went through while the pass held the guard"


def test_children_forked_beside_sqlite_work_can_use_sqlite(tmp_path: Path) -> None:
    """A thread busy in SQLite under the guard, as the housekeeper is, and 40 forks: every child can use SQLite."""
    fork_guard.install()
    path = tmp_path / "busy.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")  # the child's read never waits for the writer (as in the ledger)
    setup.execute("CREATE TABLE t (x)")
    setup.commit()
    setup.close()
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            with fork_guard.held():
                connection = sqlite3.connect(path, timeout=5)
                connection.execute("INSERT INTO t VALUES (1)")
                connection.commit()
                connection.close()

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        statuses = [fork_child("open-sqlite", path) for _ in range(40)]
    finally:
        stop.set()
        worker.join()
    assert statuses == [0] * 40, statuses  # a child left with SQLite's mutexes locked dies of SIGALRM
