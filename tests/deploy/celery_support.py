"""What the Celery tests share: a private Redis DB number for the broker, and killing a worker with its tasks."""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress

REDIS_SERVER = os.environ.get("CAMPAIGN_RUNS_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_DB_FIRST = int(os.environ.get("CAMPAIGN_RUNS_TEST_REDIS_DB", "7"))
REDIS_OWNER_KEY = "campaign-runs-test-owner"


def claim_redis_db() -> int:
    """A Redis DB number no other run of these modules uses (from ``CAMPAIGN_RUNS_TEST_REDIS_DB`` up), flushed.

    Each run marks its DB with an owner key (set if absent, expiring after an hour), so two sessions
    that run these modules at the same time never share a broker or flush each other's queues.
    """
    import redis

    owner = f"{os.getpid()}-{time.time_ns()}"
    for number in [REDIS_DB_FIRST, *(n for n in range(1, 16) if n != REDIS_DB_FIRST)]:
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
        try:
            if client.set(REDIS_OWNER_KEY, owner, nx=True, ex=3600):
                client.flushdb()
                client.set(REDIS_OWNER_KEY, owner, ex=3600)
                return number
        finally:
            client.close()
    raise AssertionError("no free Redis DB number (1-15) for the Celery broker")


def flush_redis(number: int) -> None:
    """Empty (and so release) a Redis DB number claimed by ``claim_redis_db``."""
    import redis

    client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
    try:
        client.flushdb()
    finally:
        client.close()


def kill_with_descendants(pid: int) -> list[int]:
    """SIGKILL process ``pid``, its process group and every process descending from it; the pids killed.

    The Task SDK puts a task process in a process group of its own, so killing the worker's group alone
    would leave the task sending. Everything is frozen (SIGSTOP) first, so nothing forks in between.
    """
    import psutil

    root = psutil.Process(pid)
    frozen: list[psutil.Process] = []
    for _ in range(3):  # a process may have forked while the others were being frozen
        found = [root, *root.children(recursive=True)]
        for process in found:
            if process not in frozen:
                with suppress(psutil.Error):
                    process.send_signal(signal.SIGSTOP)
                    frozen.append(process)
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for process in frozen:
        with suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(frozen, timeout=10)
    return [process.pid for process in frozen]
