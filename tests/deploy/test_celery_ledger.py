"""Two Celery worker "hosts" sharing the delivery ledger in PostgreSQL: no recipient emailed twice across hosts.

Each worker has its own AIRFLOW_HOME and its own sink folder (SMS and push lines land on the host that sent
them) and reaches the ledger through Connection ``campaign_ledger`` (``AIRFLOW_CONN_CAMPAIGN_LEDGER``). The
scheduler, dag-processor and api-server use this test session's metadata DB, so the plugin's Stop and Restart
are called in-process. Redis is the broker (its own DB number); email goes to a real SMTP server (aiosmtpd).

1. A run stopped (the plugin's Stop) on host A, then restarted while only host B runs: B sends the rest,
   nobody twice, everybody once.
2. Host B's worker killed with SIGKILL mid-batch, with its whole process tree (the task process included, so
   no orphan keeps sending), then the run restarted on host A: nobody emailed twice, everyone else reached.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.dags.campaigns.runs import (
    plugin_restart,
    plugin_stop,
    plugin_users,
    scheduler_stack,
    sink_records,
    task_pid,
    trigger,
    wait_for_dag,
    wait_quiet,
    wait_run_done,
    xcoms,
)
from tests.dags.conftest import FLASH_SALE_CSV, csv_rows
from tests.deploy.celery_support import REDIS_SERVER, claim_redis_db, flush_redis, kill_with_descendants
from tests.support.airflow_env import free_port
from tests.support.holding_smtp import HoldingSmtpSink, holding_smtp
from tests.support.ledger_db import LEDGER_CONN_ID, connection_uri, ledger_database, ledger_rows
from tests.support.processes import AirflowProcess, AirflowStack

pytestmark = pytest.mark.slow

DAG_ID = "flash_sale"
SIZE, BATCH, RATE = csv_rows(FLASH_SALE_CSV), 250, 10  # flash_sale's CSV audience, valid on every channel
CUT_AFTER = 20
CHANNELS = ("email", "sms", "push")
# The Restart's params: every channel unlimited (0 messages/s), the restart's pace is not under test.
UNLIMITED = {f"{channel}_rate_limit_per_second": 0 for channel in CHANNELS}


@dataclass
class Hosts:
    """The shared services and the worker hosts (name -> sink folder) of the module."""

    airflow: AirflowStack
    smtp: HoldingSmtpSink
    ledger_db: str
    root: Path
    sinks: dict[str, Path] = field(default_factory=dict)
    workers: dict[str, AirflowProcess] = field(default_factory=dict)

    def start_worker(self, host: str) -> AirflowProcess:
        """A Celery worker for ``host``: its own AIRFLOW_HOME and sink folder, the shared ledger Connection."""
        home = self.root / host
        self.sinks[host] = home / "sinks"
        env = {**self.airflow.env, "AIRFLOW_HOME": str(home), "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(self.sinks[host])}
        args = ["celery", "worker", "--concurrency", "4", "--celery-hostname", f"{host}@%h", "--skip-serve-logs"]
        name = f"worker-{host}-{len(self.airflow.processes)}"
        process = AirflowProcess(name, args, env, self.airflow.log_dir / f"{name}.log")
        process.start()
        self.airflow.processes[name] = process
        self.workers[host] = process
        return process

    def stop_worker(self, host: str) -> None:
        """Stop ``host``'s worker gracefully (its process group)."""
        self.workers.pop(host).stop()

    def host_of(self, run_id: str) -> set[str]:
        """The hosts whose sink folder holds SMS lines of ``run_id``."""
        return {h for h, sink in self.sinks.items() if any(r["run_id"] == run_id for r in sms(sink))}


def sms(sink: Path) -> list[dict[str, Any]]:
    """SMS lines in one host's sink folder."""
    return sink_records(sink, DAG_ID, "sms")


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    """Scheduler, dag-processor and api-server with CeleryExecutor; workers are started by the scenarios."""
    root = Path(tempfile.mkdtemp(prefix="campaign-celery-ledger-"))
    plugin_users()  # the FAB users the plugin's Stop and Restart act as, created before any run is cut
    redis_db = claim_redis_db()
    try:
        with ledger_database("celery") as database, holding_smtp() as (smtp, port):
            env = {
                **os.environ,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"{REDIS_SERVER}/{redis_db}",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__SMTP__SMTP_PORT": str(port),
                "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(root / "scheduler-sinks"),
                f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}": connection_uri(database),
                "AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID": LEDGER_CONN_ID,
            }
            with scheduler_stack(env, root / "logs") as airflow:
                wait_for_dag(DAG_ID, airflow)
                yield Hosts(airflow, smtp, database, root)
    finally:
        flush_redis(redis_db)


def start_run(hosts: Hosts, name: str) -> str:
    """Trigger flash_sale (every channel one batch of 250 at 10/s) and wait until CUT_AFTER emails arrived."""
    conf: dict[str, Any] = {}
    for channel in CHANNELS:
        conf[f"{channel}_batch_size"] = BATCH
        conf[f"{channel}_rate_limit_per_second"] = RATE
    run_id = trigger(DAG_ID, conf, run_id=f"{name}_{os.getpid()}_{time.time_ns()}")
    deadline = time.monotonic() + 240
    while hosts.smtp.count(run_id) < CUT_AFTER:
        assert time.monotonic() < deadline, f"never sent {CUT_AFTER} emails\n{hosts.airflow.logs()}"
        time.sleep(0.02)
    return run_id


def in_doubt(hosts: Hosts, run_id: str) -> set[tuple[str, str]]:
    """(channel, recipient) rows of ``run_id`` left pending in the shared ledger."""
    rows = ledger_rows(hosts.ledger_db, "run_id=%s AND status='pending'", (run_id,))
    return {(row[0], row[1]) for row in rows}


def per_recipient(hosts: Hosts, channel: str, run_ids: set[str]) -> dict[str, int]:
    """Messages per recipient over the runs: the SMTP server's count for email, every host's sink otherwise."""
    if channel == "email":
        return dict(hosts.smtp.recipients(run_ids))
    counts: dict[str, int] = {}
    for sink in hosts.sinks.values():
        for record in sink_records(sink, DAG_ID, channel):
            if record["run_id"] in run_ids:
                counts[record["recipient"]] = counts.get(record["recipient"], 0) + 1
    return counts


def check_once(hosts: Hosts, run_ids: set[str], doubt: set[tuple[str, str]]) -> dict[str, int]:
    """Nobody got two messages on any channel; everyone got one, but those in doubt (not resent). Duplicates."""
    duplicates: dict[str, int] = {}
    for channel in CHANNELS:
        counts = per_recipient(hosts, channel, run_ids)
        duplicates[channel] = sum(1 for n in counts.values() if n > 1)
        doubtful = {recipient for ch, recipient in doubt if ch == channel}
        assert len(set(counts) | doubtful) == SIZE, (channel, len(counts), doubtful)
    assert duplicates == dict.fromkeys(CHANNELS, 0), duplicates
    return duplicates


def test_stopped_on_one_host_restarted_on_the_other_sends_nobody_twice(hosts: Hosts) -> None:
    """Stop on host A mid-batch; with only host B up, the restart sends the rest: every recipient exactly once."""
    hosts.start_worker("host-a")
    run_id = start_run(hosts, "stop_on_a")
    plugin_stop(DAG_ID, run_id)
    first = wait_quiet(lambda: hosts.smtp.count(run_id), quiet_seconds=2)
    assert CUT_AFTER <= first < SIZE
    hosts.stop_worker("host-a")
    hosts.start_worker("host-b")
    new_run_id = plugin_restart(DAG_ID, run_id, params=UNLIMITED)
    assert wait_run_done(DAG_ID, new_run_id) == "success", hosts.airflow.logs()

    assert hosts.host_of(run_id) == {"host-a"} and hosts.host_of(new_run_id) == {"host-b"}
    assert in_doubt(hosts, run_id) == set(), "a Stop leaves nobody in doubt"
    check_once(hosts, {run_id, new_run_id}, set())
    sent = ledger_rows(hosts.ledger_db, "run_id=ANY(%s) AND status='sent'", ([run_id, new_run_id],))
    assert len(sent) == SIZE * len(CHANNELS), "both hosts wrote the one shared ledger"
    assert not list(hosts.root.glob("*/sinks/*/ledger.sqlite")), "no host kept a ledger file of its own"
    progress = xcoms(DAG_ID, new_run_id)[("send_email", "campaign_progress")]
    assert (progress["total"], progress["sent"]) == (SIZE - first, SIZE - first)


def test_worker_killed_mid_batch_then_restarted_sends_nobody_twice(hosts: Hosts) -> None:
    """SIGKILL of host B's worker and its task processes mid-batch; the restart on host A: nobody twice."""
    if "host-b" not in hosts.workers:
        hosts.start_worker("host-b")
    for host in [h for h in hosts.workers if h != "host-b"]:
        hosts.stop_worker(host)
    run_id = start_run(hosts, "kill_b")
    pid = task_pid(DAG_ID, run_id, "send_email")
    assert pid is not None
    worker = hosts.workers.pop("host-b")
    killed = kill_with_descendants(worker.pid)
    assert pid in killed, "the task process descends from the worker we started"
    first = wait_quiet(lambda: hosts.smtp.count(run_id), quiet_seconds=2)
    assert not [p for p in killed if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert first < SIZE
    hosts.start_worker("host-a")
    assert wait_run_done(DAG_ID, run_id, timeout=180) == "failed"
    doubt = in_doubt(hosts, run_id)
    new_run_id = plugin_restart(DAG_ID, run_id, params=UNLIMITED)
    assert wait_run_done(DAG_ID, new_run_id) == "success", hosts.airflow.logs()

    assert hosts.host_of(new_run_id) == {"host-a"}
    assert len({ch for ch, _ in doubt}) == len(doubt), f"at most one in doubt per channel: {doubt}"
    duplicates = check_once(hosts, {run_id, new_run_id}, doubt)
    print(f"\nkill of host-b mid-batch: {first} emails before, in doubt {sorted(doubt)}, duplicates {duplicates}")
