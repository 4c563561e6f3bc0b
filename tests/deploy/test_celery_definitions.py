"""New through one API server's REST endpoint, then the campaign runs on a Celery worker.

A private DAGs folder holds a copy of the campaign factory and the one loader (``campaigns/campaigns.py``) and no
campaign; the definitions folder is its ``campaigns`` folder, the default. The api-server (the plugin's REST API
and the execution API), dag-processor and scheduler use this test session's metadata DB; Redis is the broker (its
own DB number); the worker has its own sink folder, so the SMS lines it writes prove where the campaign ran.
Everything the scenario does goes through ``/campaign-runs`` as an Op user (alice) with a JWT.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.dags.campaigns.runs import plugin_users, scheduler_stack, sink_records
from tests.deploy.celery_support import REDIS_SERVER, claim_redis_db, flush_redis
from tests.deploy.topology_support import login
from tests.support.airflow_env import REPO, free_port
from tests.support.fixtures import start_smtp
from tests.support.processes import AirflowProcess, AirflowStack, wait_until

pytestmark = pytest.mark.slow

PREFIX = "/campaign-runs"
DAG_ID = f"celery_new_{os.getpid()}"
SIZE = 12
DEFINITION = f"""\
id: {DAG_ID}
description: Created through the REST API, sent by a Celery worker.
owner: alice
owner_email: alice@example.com
schedule:
  cron: null
  timezone: Europe/Paris
  start_date: 2026-01-01
audience:
  segment: celery_testers
  size: {SIZE}
  population: 1000
channels:
  sms:
    text: "Hello $first_name from {DAG_ID}"
    batch_size: 5
"""


@dataclass
class Stack:
    """The running stack, the worker's sink folder and an HTTP client logged in as alice."""

    airflow: AirflowStack
    worker_sinks: Path
    client: httpx.Client

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.airflow.logs()}")

    def post(self, path: str, body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
        response = self.client.post(PREFIX + path, json=body)
        if response.status_code != expect:
            raise self.fail(f"POST {path}: {response.status_code} {response.text}")
        return dict(response.json())

    def get(self, path: str) -> httpx.Response:
        return self.client.get(PREFIX + path)


def private_dags(root: Path) -> Path:
    """A DAGs folder with the campaigns loader and no campaign yet (the factory is the installed package)."""
    dags = root / "dags"
    (dags / "campaigns").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "campaigns" / "campaigns.py", dags / "campaigns" / "campaigns.py")
    return dags


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="campaign-celery-definitions-"))
    dags = private_dags(root)
    plugin_users()
    redis_db = claim_redis_db()
    smtp, sink = start_smtp()
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"{REDIS_SERVER}/{redis_db}",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SMTP__SMTP_PORT": str(sink.port),
        "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(root / "scheduler-sinks"),
    }
    env.pop("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", None)  # the default: <dags_folder>/campaigns
    try:
        with scheduler_stack(env, root / "logs") as airflow:
            worker_sinks = root / "worker" / "sinks"
            worker_env = {  # the stack's environment: it names the execution API the tasks report to
                **airflow.env,
                "AIRFLOW_HOME": str(root / "worker"),
                "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(worker_sinks),
            }
            args = [
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--celery-hostname",
                "definitions@%h",
                "--skip-serve-logs",
            ]
            worker = AirflowProcess("celery-worker", args, worker_env, root / "logs" / "celery-worker.log")
            worker.start()
            airflow.processes["celery-worker"] = worker
            token = login(airflow.url("api-server"), "alice")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=airflow.url("api-server"), headers=headers, timeout=60) as client:
                yield Stack(airflow, worker_sinks, client)
    finally:
        with suppress(Exception):
            smtp.stop()
        flush_redis(redis_db)
        shutil.rmtree(root, ignore_errors=True)


def test_a_campaign_created_through_the_api_runs_on_a_celery_worker(stack: Stack) -> None:
    created = stack.post("/campaigns", {"yaml": DEFINITION, "note": "New through REST"}, expect=201)
    assert (created["dag_id"], created["written"], created["version"]) == (DAG_ID, True, 1), created

    def loaded() -> bool:
        return stack.get(f"/campaigns/{DAG_ID}").status_code == 200

    try:
        wait_until(loaded, timeout=180, interval=1.0, message=f"the dag-processor to load {DAG_ID}")
    except AssertionError as error:
        raise stack.fail(str(error)) from None
    assert stack.get(f"/campaigns/{DAG_ID}").json()["is_paused"] is True  # paused at creation
    stack.post(f"/campaigns/{DAG_ID}/actions/resume", {"note": "Go", "missed": "none"})
    started = stack.post(f"/campaigns/{DAG_ID}/actions/run_now", {"note": "First send"})
    (run_id,) = started["run_ids"]

    def finished() -> str | None:
        status = stack.get(f"/campaigns/{DAG_ID}/runs/{quote(run_id, safe='')}").json()["status"]
        return status if status in ("completed", "failed") else None

    try:
        wait_until(finished, timeout=240, interval=1.0, message=f"run {run_id} to finish")
    except AssertionError as error:
        raise stack.fail(str(error)) from None
    details = stack.get(f"/campaigns/{DAG_ID}/runs/{quote(run_id, safe='')}").json()
    assert details["status"] == "completed", stack.fail(f"run details: {details}")
    sent = [r for r in sink_records(stack.worker_sinks, DAG_ID, "sms") if r["run_id"] == run_id]
    assert len({r["recipient"] for r in sent}) == SIZE, stack.fail(f"{len(sent)} SMS in the worker's sink")
    assert not sink_records(stack.worker_sinks.parent.parent / "scheduler-sinks", DAG_ID, "sms")
    kinds = [e["kind"] for e in stack.get(f"/campaigns/{DAG_ID}/history").json()["entries"]]
    assert kinds == ["run_now", "resume", "created"]
