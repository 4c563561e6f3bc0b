"""Helpers for end-to-end campaign runs: reading runs, XComs and sinks, and stopping a run as the plugin does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from tests.support.airflow_env import free_port
from tests.support.processes import AirflowStack, airflow_stack, wait_until

STOP_POLL_SECONDS = 0.02


def running_run_id(dag_id: str, timeout: float = 60.0) -> str:
    """The run id of the newest running run of ``dag_id``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with create_session() as session:
            run = (
                session.query(DagRun)
                .filter(DagRun.dag_id == dag_id, DagRun.state == "running")
                .order_by(DagRun.id.desc())
                .first()
            )
            if run is not None:
                return str(run.run_id)
        time.sleep(STOP_POLL_SECONDS)
    raise AssertionError(f"no running run of {dag_id}")


def mark_run_failed(dag_id: str, run_id: str) -> None:
    """Stop a run the way the plugin does: Airflow's own mark-failed on the serialized DAG."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        assert dag is not None, dag_id
        set_dag_run_state_to_failed(dag=dag, run_id=run_id, commit=True, session=session)


class Stopper(threading.Thread):
    """Marks the running run of a DAG failed once ``ready()`` is true; records what was sent at that time."""

    def __init__(self, dag_id: str, ready: Callable[[], bool], sent: Callable[[], int]) -> None:
        super().__init__(daemon=True)
        self.dag_id = dag_id
        self.ready = ready
        self.sent = sent
        self.sent_at_request: int | None = None
        self.run_id: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """Wait for the condition, then stop the run."""
        try:
            self.run_id = running_run_id(self.dag_id)
            deadline = time.monotonic() + 120
            while not self.ready():
                if time.monotonic() > deadline:
                    raise AssertionError("stop condition never met")
                time.sleep(STOP_POLL_SECONDS)
            self.sent_at_request = self.sent()
            mark_run_failed(self.dag_id, self.run_id)
        except BaseException as error:
            self.error = error


def run_messages(messages: list[Message], run_id: str) -> list[Message]:
    """Emails of one run (header ``X-Campaign-Run-Id``)."""
    return [m for m in list(messages) if m["X-Campaign-Run-Id"] == run_id]


def subject(message: Message) -> str:
    """The decoded subject of an email."""
    return str(make_header(decode_header(str(message["Subject"]))))


def sink_records(sink_dir: Path, campaign: str, channel: str) -> list[dict[str, Any]]:
    """Every JSON line of a channel sink."""
    path = sink_dir / campaign / f"{channel}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """All XComs of a run, by (task_id, key)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {(row.task_id, row.key): XComModel.deserialize_value(row) for row in rows}


def task_states(dag_id: str, run_id: str) -> dict[str, str | None]:
    """Task instance states of a run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {row.task_id: (str(getattr(row.state, "value", row.state)) if row.state else None) for row in rows}


@contextmanager
def scheduler_stack(env: dict[str, str], log_dir: Path) -> Iterator[AirflowStack]:
    """api-server (execution API), dag-processor and scheduler with LocalExecutor, stopped on exit."""
    port = free_port()
    env = {**env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"}
    with airflow_stack(env, log_dir) as stack:
        stack.start("api-server", port=port)
        stack.start("dag-processor")
        stack.start("scheduler")
        stack.wait_healthy()
        yield stack


def wait_for_dag(dag_id: str, stack: AirflowStack, timeout: float = 120.0) -> None:
    """Wait until the dag-processor has serialized ``dag_id``, then unpause it."""
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    def ready() -> bool:
        with create_session() as session:
            model = session.get(DagModel, dag_id)
            return model is not None and SerializedDagModel.get(dag_id, session=session) is not None

    try:
        wait_until(ready, timeout=timeout, interval=0.5, message=f"DAG {dag_id} serialized")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from error
    with create_session() as session:
        model = session.get(DagModel, dag_id)
        assert model is not None
        model.is_paused = False


def trigger(dag_id: str, conf: dict[str, Any], run_id: str) -> str:
    """Trigger a manual run as the plugin would; the scheduler starts it."""
    import pendulum
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.TEST,
            run_type=DagRunType.MANUAL,
            triggering_user_name="campaign-tests",
            run_id=run_id,
            conf=conf,
            logical_date=pendulum.now("UTC"),
            session=session,
        )
        assert run is not None
        return str(run.run_id)


def wait_quiet(count: Callable[[], int], quiet_seconds: float, timeout: float = 90.0) -> int:
    """Wait until ``count()`` has not changed for ``quiet_seconds``; return the final count."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return now
    raise AssertionError(f"still sending after {timeout}s")
