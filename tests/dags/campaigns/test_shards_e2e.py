"""A sharded email channel under a real scheduler (LocalExecutor) and SMTP server: Stop, Restart, nobody twice."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.dags.campaigns.runs import (
    TimedSmtpSink,
    plugin_restart,
    plugin_stop,
    plugin_users,
    scheduler_stack,
    trigger,
    wait_for_dag,
    wait_quiet,
    wait_run_done,
    xcoms,
)
from tests.dags.campaigns.test_shards import LOADER, SHARDED
from tests.dags.conftest import DAGS
from tests.support.airflow_env import free_port
from tests.support.processes import AirflowStack

# Its own DAG id: another module of the same pytest worker (same metadata DB) may hold "sharded_sale".
DAG_ID = "sharded_sale_e2e"
SIZE, SHARDS, RATE = 90, 3, 9  # 3 messages/s per shard: 10 s to send everyone, the Stop lands well before
STOP_AFTER = 15
pytestmark = pytest.mark.slow


@dataclass
class Stack:
    """The Airflow processes and the SMTP sink."""

    airflow: AirflowStack
    smtp: TimedSmtpSink


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Scheduler, dag-processor and api-server over a DAGs folder holding the sharded campaign (email only)."""
    home = Path(tempfile.mkdtemp(prefix="campaign-shards-e2e-"))
    dags = home / "dags"
    dags.mkdir()
    # Size, batch and rate in the YAML (not the run's conf): the run sends at the campaign's own settings.
    email = {**SHARDED["channels"]["email"], "shards": SHARDS, "batch_size": 250, "rate_limit_per_second": RATE}
    audience = {**SHARDED["audience"], "size": SIZE}
    campaign = {**SHARDED, "id": DAG_ID, "audience": audience, "channels": {"email": email}}
    (dags / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(campaign))
    (dags / f"{DAG_ID}.py").write_text(LOADER)
    smtp, port = TimedSmtpSink(), free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    pythonpath = os.pathsep.join(p for p in (str(DAGS), str(DAGS.parent), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "PYTHONPATH": pythonpath,
        "AIRFLOW__SMTP__SMTP_PORT": str(port),
        "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(home / "sinks"),
    }
    try:
        with scheduler_stack(env, home / "logs") as airflow:
            wait_for_dag(DAG_ID, airflow)
            yield Stack(airflow, smtp)
    finally:
        controller.stop()


def run_done(run_id: str) -> str:
    """``wait_run_done``; when the run does not end, the message names every task instance (shards apart)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    try:
        return wait_run_done(DAG_ID, run_id)
    except AssertionError as error:
        with create_session() as session:
            rows = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).all()
            states = sorted((row.task_id, row.map_index, str(row.state), row.pid) for row in rows)
        raise AssertionError(f"{error}\ntask instances (task, map index, state, pid): {states}") from error


def test_stop_and_restart_of_a_sharded_run_sends_nobody_twice(stack: Stack) -> None:
    """Three shards stopped mid-way (the plugin's Stop), restarted: every recipient exactly one email."""
    plugin_users()  # before the run: creating the users takes seconds under load
    run_id = trigger(DAG_ID, {}, run_id=f"shards_{os.getpid()}_{time.time_ns()}")
    deadline = time.monotonic() + 180
    while len(stack.smtp.of_run(run_id)) < STOP_AFTER:
        assert time.monotonic() < deadline, f"never sent {STOP_AFTER} emails\n{stack.airflow.logs()}"
        time.sleep(0.02)
    plugin_stop(DAG_ID, run_id)
    first = wait_quiet(lambda: len(stack.smtp.of_run(run_id)), quiet_seconds=2)
    assert STOP_AFTER <= first < SIZE

    new_run_id = plugin_restart(DAG_ID, run_id, params={"email_rate_limit_per_second": 0})  # 0: unlimited
    assert run_done(new_run_id) == "success", stack.airflow.logs()
    received = Counter(r for _, r in stack.smtp.of_run(run_id) + stack.smtp.of_run(new_run_id))
    assert len(received) == SIZE and set(received.values()) == {1}, received.most_common(3)
    values = xcoms(DAG_ID, new_run_id)
    summary = values[("summarise", "return_value")]["channels"]["email"]
    assert (summary["total"], summary["sent"], summary["in_doubt"]) == (SIZE - first, SIZE - first, 0)
