"""End to end with a real api-server, dag-processor and scheduler (LocalExecutor) and a real SMTP server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psutil
import pytest
from campaign_runs import core
from campaign_runs.adapters import runs as airflow_runs
from sqlalchemy import select

from tests.support.fixtures import PROBE_KIND, SmtpSink, outbox_rows, wait_for_housekeeping_pass
from tests.support.processes import AirflowStack, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(shared_stack: AirflowStack) -> Iterator[AirflowStack]:
    """api-server + dag-processor + scheduler on the test session's metadata DB (``tests.support.shared_stack``)."""
    yield shared_stack
    print(shared_stack.logs()) if os.environ.get("CAMPAIGN_RUNS_SHOW_LOGS") else None


@pytest.fixture
def smtp_server(shared_mail: SmtpSink) -> SmtpSink:
    """The stack's SMTP server, holding only this test's emails; Airflow's ``[smtp]`` here points at it too."""
    return shared_mail


def trigger(dag_id: str) -> str:
    from airflow.utils.session import create_session

    run_id = f"manual__e2e_{time.time_ns()}"
    with create_session() as session:
        airflow_runs.trigger_run(dag_id, run_id=run_id, conf={}, user="alice", note="", session=session)
    return run_id


def task_instance(dag_id: str, run_id: str, task_id: str = "send_email") -> tuple[str | None, int | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            select(TaskInstance.state, TaskInstance.pid).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).first()
    return (str(row[0]) if row and row[0] else None, row[1] if row else None)


def wait_task_running(stack: AirflowStack, dag_id: str, run_id: str) -> int:
    """Wait for the sending task to run; return its process id."""
    try:
        wait_until(
            lambda: task_instance(dag_id, run_id)[0] == "running" and task_instance(dag_id, run_id)[1],
            timeout=180,
            message=f"{dag_id} {run_id} send_email running",
        )
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    pid = task_instance(dag_id, run_id)[1]
    assert pid is not None
    return pid


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def status(dag_id: str, run_id: str) -> str:
    return core.get_run(dag_id, run_id).status


def test_stop_restart_skip_with_a_real_scheduler(stack: AirflowStack, smtp_server: SmtpSink) -> None:
    run_id = trigger("cr_slow")
    pid = wait_task_running(stack, "cr_slow", run_id)
    assert psutil.pid_exists(pid)

    started = time.monotonic()
    core.stop_run("cr_slow", run_id, actor="alice", note="Wrong segment")
    stopped_after = wait_until(lambda: status("cr_slow", run_id) == "stopped", timeout=60, interval=0.05)
    wait_until(lambda: process_gone(pid), timeout=30, message="task process to end")
    [message] = smtp_server.wait_for(1)
    email_after = time.monotonic() - started
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_slow stopped"
    assert message["To"] == "alice@example.com"
    assert [e.run_id for e in core.worklist("alice")] == [run_id]
    print(f"\nTIMING stop->stopped {stopped_after:.2f}s, stop->email {email_after:.2f}s")

    restarted = core.restart_run("cr_slow", run_id, actor="alice", note="Segment fixed")
    assert restarted.new_run_id is not None
    core.wait_for_deliveries(10)
    new_pid = wait_task_running(stack, "cr_slow", restarted.new_run_id)
    assert status("cr_slow", restarted.new_run_id) == "running"
    assert (status("cr_slow", run_id), core.worklist("alice")) == ("skipped", [])

    core.stop_run("cr_slow", restarted.new_run_id, actor="bob", note="Pause for legal review")
    wait_until(lambda: status("cr_slow", restarted.new_run_id) == "stopped", timeout=60)
    wait_until(lambda: process_gone(new_pid), timeout=30, message="restarted task process to end")
    smtp_server.wait_for(3)
    core.skip_run("cr_slow", restarted.new_run_id, actor="bob", note="Not this week")
    core.wait_for_deliveries(10)
    smtp_server.wait_for(4)
    # Nothing may be sent twice: once the four emails are recorded as sent, let the scheduler's
    # housekeeper complete two more passes (each delivers a probe email of its own), then count.
    wait_until(lambda: [r["status"] for r in outbox_rows()].count("sent") >= 4, timeout=30, message="4 emails sent")
    probes = [wait_for_housekeeping_pass(smtp_server) for _ in range(2)]
    subjects = [s for s in smtp_server.subjects() if s not in probes]
    assert sorted(subjects) == sorted(
        [
            f"[Campaign Runs] Run {run_id} of cr_slow stopped",
            f"[Campaign Runs] Run {run_id} of cr_slow restarted as {restarted.new_run_id}",
            f"[Campaign Runs] Run {restarted.new_run_id} of cr_slow stopped",
            f"[Campaign Runs] Run {restarted.new_run_id} of cr_slow skipped",
        ]
    ), subjects
    emails = [r for r in outbox_rows() if r["kind"] != PROBE_KIND]
    assert sorted((r["kind"], r["run_id"]) for r in emails) == sorted(
        [
            ("stopped", run_id),
            ("restarted", run_id),
            ("stopped", restarted.new_run_id),
            ("skipped", restarted.new_run_id),
        ]
    )
    assert [(r["status"], r["attempts"]) for r in emails] == [("sent", 1)] * 4
    assert status("cr_slow", restarted.new_run_id) == "skipped"
    assert core.worklist("bob") == []


def test_a_task_that_ignores_the_stop_is_killed_after_the_grace_period(
    stack: AirflowStack, smtp_server: SmtpSink
) -> None:
    run_id = trigger("cr_stubborn")
    pid = wait_task_running(stack, "cr_stubborn", run_id)
    started = time.monotonic()
    core.stop_run("cr_stubborn", run_id, actor="alice", note="Stop now")
    assert status("cr_stubborn", run_id) == "stopping"
    stopped_after = wait_until(lambda: status("cr_stubborn", run_id) == "stopped", timeout=60, interval=0.05)
    assert stopped_after >= 2.5  # the grace period ([campaign_runs] stop_grace_seconds = 3) came first
    assert task_instance("cr_stubborn", run_id)[0] == "failed"
    killed_after = wait_until(lambda: process_gone(pid), timeout=60, message="stubborn task to be killed")
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_stubborn stopped"
    print(
        f"\nTIMING stubborn stop->stopped {stopped_after:.2f}s, process killed after {time.monotonic() - started:.2f}s"
        f" ({killed_after:.2f}s after stopped)"
    )
