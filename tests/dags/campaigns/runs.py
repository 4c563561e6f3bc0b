"""Helpers for end-to-end campaign runs: reading runs, XComs and sinks; the plugin's Stop and Restart; crashes."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from tests.support.airflow_env import free_port
from tests.support.processes import AirflowStack, airflow_stack, settle_earlier_modules, wait_until

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
    """Airflow's own mark-failed on the serialized DAG (not the plugin's Stop: see ``plugin_stop``)."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        assert dag is not None, dag_id
        set_dag_run_state_to_failed(dag=dag, run_id=run_id, commit=True, session=session)


class Stopper(threading.Thread):
    """Marks the running run of a DAG failed (Airflow's mark-failed) once ``ready()`` is true; records what was sent."""

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
    """Emails of one run (header ``X-Campaign-Run-Id``, unfolded: a long run id is folded onto its own line)."""
    return [m for m in list(messages) if header(m, "X-Campaign-Run-Id") == run_id]


def header(message: Message, name: str) -> str:
    """A header's value without the folding whitespace ``EmailMessage`` puts before a long value."""
    return str(message[name]).strip()


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
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") == os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]:
        settle_earlier_modules()  # this worker's DB, not a deployment's own
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


PLUGIN_ACTOR = "admin"


@functools.cache
def plugin_users() -> None:
    """The FAB users the plugin's actions need (once per process, outside any timed section)."""
    from tests.support.fixtures import create_users

    create_users()


def plugin_stop(dag_id: str, run_id: str, note: str = "stopped by the campaign tests") -> None:
    """The plugin's own Stop (``campaign_runs.core.stop_run``), as the UI, REST API and CLI call it."""
    from campaign_runs.core import stop_run

    plugin_users()
    stop_run(dag_id, run_id, actor=PLUGIN_ACTOR, note=note)


def plugin_restart(
    dag_id: str,
    run_id: str,
    timeout: float = 90.0,
    *,
    resend_in_doubt: bool = False,
    params: dict[str, Any] | None = None,
) -> str:
    """The plugin's Restart (``campaign_runs.core.restart_run``) once the run allows it; the new run's id.

    ``params`` are the Restart's overrides of the run's conf (the UI's and the REST API's ``params``).
    """
    from campaign_runs.core import restart_run
    from campaign_runs.domain import ActionNotAllowedError

    plugin_users()
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = restart_run(
                dag_id,
                run_id,
                actor=PLUGIN_ACTOR,
                note="restarted by the campaign tests",
                resend_in_doubt=resend_in_doubt,
                params=params,
            )
        except ActionNotAllowedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        assert result.new_run_id is not None
        return result.new_run_id


def run_state(dag_id: str, run_id: str) -> str | None:
    """The DagRun's state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one_or_none()
        return None if run is None or run.state is None else str(getattr(run.state, "value", run.state))


def wait_run_done(dag_id: str, run_id: str, timeout: float = 180.0) -> str:
    """Wait until the run is ``success`` or ``failed``; its state (on timeout: the stuck tasks' stacks and logs)."""
    deadline = time.monotonic() + timeout
    while (state := run_state(dag_id, run_id)) not in ("success", "failed"):
        if time.monotonic() > deadline:
            states = task_states(dag_id, run_id)
            raise AssertionError(f"run {run_id} still {state} after {timeout}s: {states}\n{stuck(dag_id, run_id)}")
        time.sleep(0.2)
    return state


def stuck(dag_id: str, run_id: str, lines: int = 60) -> str:
    """The log tail of each running task of the run, after asking its process for every thread's stack."""
    from airflow.configuration import conf

    running = [task for task, state in task_states(dag_id, run_id).items() if state == "running"]
    for task_id in running:
        if pid := task_pid(dag_id, run_id, task_id):
            with suppress(OSError):
                os.kill(pid, signal.SIGUSR1)  # campaign_runs.factory registers faulthandler on it
    time.sleep(2)
    folder = Path(conf.get("logging", "base_log_folder")) / f"dag_id={dag_id}" / f"run_id={run_id}"
    parts = []
    for task_id in running:
        for path in sorted(folder.glob(f"task_id={task_id}/**/*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"---- {path.relative_to(folder)}\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no log of a running task under {folder})"


def task_pid(dag_id: str, run_id: str, task_id: str) -> int | None:
    """The task instance's ``pid`` column: the task process the supervisor forked."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id).one_or_none()
        return None if ti is None or ti.pid is None else int(ti.pid)


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (Linux ``/proc``), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants."""
    current: int | None = pid
    while current and current > 1:
        if current == ancestor:
            return True
        current = parent_pid(current)
    return False


def kill_task_process(dag_id: str, run_id: str, task_id: str, ancestor: int) -> int:
    """SIGKILL the task's process, after checking it descends from ``ancestor`` (the scheduler we started)."""
    pid = task_pid(dag_id, run_id, task_id)
    assert pid is not None, f"{task_id} has no pid"
    assert descends_from(pid, ancestor), f"pid {pid} of {task_id} is not under our scheduler {ancestor}"
    os.kill(pid, signal.SIGKILL)
    return pid


@dataclass
class TimedSmtpSink:
    """aiosmtpd handler keeping (wall-clock arrival time, campaign, run id, recipient id) of every message."""

    received: list[tuple[float, str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record one message."""
        from email import message_from_bytes

        message = message_from_bytes(envelope.original_content or envelope.content)
        item = (
            time.time(),
            header(message, "X-Campaign-Id"),
            header(message, "X-Campaign-Run-Id"),
            header(message, "X-Campaign-Recipient"),
        )
        with self.lock:
            self.received.append(item)
        return "250 OK"

    def of_run(self, run_id: str) -> list[tuple[float, str]]:
        """(arrival time, recipient id) of one run's campaign emails."""
        with self.lock:
            return [(at, recipient) for at, _, run, recipient in self.received if run == run_id]


def campaign_from_yaml(folder: Path, text: str) -> Any:
    """The campaign DAG of YAML ``text``, written beside a loader in ``folder`` and synced to the metadata DB."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from campaign_runs.factory.documents import load_yaml

    name = str(load_yaml(text)["id"])
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    loader = folder / f"{name}.py"
    loader.write_text(
        "# An airflow DAG.\nfrom campaign_runs.factory.factory import campaign_dag\n\ndag = campaign_dag(__file__)\n",
        encoding="utf-8",
    )
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(loader))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[name]
