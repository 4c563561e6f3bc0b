"""A sharded campaign on two Celery worker "hosts": each sends part of it, together everyone exactly once.

The SMS channel is split into 4 shards (``.expand`` over shard numbers); two workers with 2 slots each,
their own AIRFLOW_HOME and sink folder, share the delivery ledger in PostgreSQL (Connection
``campaign_ledger``). The scheduler, dag-processor and api-server use this test session's metadata DB;
Redis is the broker (its own DB number). Reuses the hosts of ``test_celery_ledger``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.dags.campaigns.runs import (
    plugin_users,
    scheduler_stack,
    sink_records,
    trigger,
    wait_for_dag,
    wait_run_done,
    xcoms,
)
from tests.dags.campaigns.test_shards import LOADER, SHARDED
from tests.dags.conftest import DAGS
from tests.deploy.celery_support import REDIS_SERVER, claim_redis_db, flush_redis
from tests.deploy.test_celery_ledger import Hosts
from tests.support.airflow_env import free_port
from tests.support.holding_smtp import holding_smtp
from tests.support.ledger_db import LEDGER_CONN_ID, connection_uri, ledger_database, ledger_rows
from tests.support.processes import AirflowProcess

pytestmark = pytest.mark.slow

DAG_ID = "sharded_sale_celery"  # its own DAG id: other modules of the pytest worker use "sharded_sale"
SIZE, SHARDS, RATE = 40, 4, 16


class TwoSlotHosts(Hosts):
    """Worker hosts with two task slots each, so four shards need both of them."""

    def start_worker(self, host: str) -> AirflowProcess:
        """A Celery worker for ``host`` with concurrency 2."""
        home = self.root / host
        self.sinks[host] = home / "sinks"
        env = {**self.airflow.env, "AIRFLOW_HOME": str(home), "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(self.sinks[host])}
        args = ["celery", "worker", "--concurrency", "2", "--celery-hostname", f"{host}@%h", "--skip-serve-logs"]
        process = AirflowProcess(f"worker-{host}", args, env, self.airflow.log_dir / f"worker-{host}.log")
        process.start()
        self.airflow.processes[f"worker-{host}"] = process
        self.workers[host] = process
        return process


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    """CeleryExecutor scheduler stack over a DAGs folder holding the sharded campaign (SMS in 4 shards)."""
    root = Path(tempfile.mkdtemp(prefix="campaign-celery-shards-"))
    dags = root / "dags"
    dags.mkdir()
    sms = {**SHARDED["channels"]["sms"], "shards": SHARDS, "connections": 1}
    campaign = {**SHARDED, "id": DAG_ID, "channels": {"sms": sms}}
    (dags / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(campaign))
    (dags / f"{DAG_ID}.py").write_text(LOADER)
    plugin_users()
    redis_db = claim_redis_db()
    try:
        with ledger_database("celery_shards") as database, holding_smtp() as (smtp, port):
            env = {
                **os.environ,
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(DAGS), str(DAGS.parent), os.environ.get("PYTHONPATH")) if p
                ),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"{REDIS_SERVER}/{redis_db}",
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SMTP__SMTP_PORT": str(port),
                "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(root / "scheduler-sinks"),
                f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}": connection_uri(database),
                "AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID": LEDGER_CONN_ID,
            }
            with scheduler_stack(env, root / "logs") as airflow:
                wait_for_dag(DAG_ID, airflow)
                yield TwoSlotHosts(airflow, smtp, database, root)
    finally:
        flush_redis(redis_db)


def test_both_workers_send_part_of_a_sharded_channel(hosts: Hosts) -> None:
    """Four SMS shards over two 2-slot workers: both hosts' sinks hold part of the run; everyone exactly once."""
    hosts.start_worker("host-a")
    hosts.start_worker("host-b")
    conf = {"audience_size": SIZE, "sms_batch_size": 5, "sms_rate_limit_per_second": RATE}
    run_id = trigger(DAG_ID, conf, run_id=f"celery_shards_{os.getpid()}_{time.time_ns()}")
    assert wait_run_done(DAG_ID, run_id, timeout=240) == "success", hosts.airflow.logs()

    per_host = {
        host: [r["recipient"] for r in sink_records(sink, DAG_ID, "sms") if r["run_id"] == run_id]
        for host, sink in hosts.sinks.items()
    }
    assert all(per_host.values()), f"a host sent nothing: { {h: len(r) for h, r in per_host.items()} }"
    counts = Counter(recipient for recipients in per_host.values() for recipient in recipients)
    assert len(counts) == SIZE and set(counts.values()) == {1}
    rows = ledger_rows(hosts.ledger_db, "run_id=%s AND status='sent'", (run_id,))
    assert len(rows) == SIZE, "the shards wrote one shared ledger"
    assert xcoms(DAG_ID, run_id)[("summarise", "return_value")]["channels"]["sms"]["sent"] == SIZE
    print(f"\nsharded SMS on two hosts: { {h: len(r) for h, r in per_host.items()} }")
