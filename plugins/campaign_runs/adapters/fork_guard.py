"""Keeps the scheduler's forks out of the housekeeper thread's database calls.

The scheduler forks its LocalExecutor workers (all at start, and again when one dies), and every task process
is forked from one of them. A thread that is inside SQLite at the moment of a fork leaves SQLite's process-wide
mutexes locked in the child, with no thread there to unlock them: every SQLite call of that worker's task
processes (the campaign factory's SQLite ledger) then waits forever. The housekeeper holds ``guard`` for each
pass (Airflow's email utilities read Connections from the database in the middle of a send, so the sends of a
pass are inside it too); ``os.fork`` waits for it (``os.register_at_fork``) and releases it on both sides.
The housekeeper's first pass waits one interval, so the workers forked at start rarely wait at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

guard = threading.Lock()
_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Make every ``os.fork`` of this process wait for the guard (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            os.register_at_fork(before=guard.acquire, after_in_parent=guard.release, after_in_child=_release_in_child)
            _installed = True


def _release_in_child() -> None:
    """The child's copy of the guard was acquired by the forking thread, the child's only thread: free it."""
    guard.release()


@contextmanager
def held() -> Iterator[None]:
    """Hold the guard: no fork of this process starts until the block ends."""
    with guard:
        yield
