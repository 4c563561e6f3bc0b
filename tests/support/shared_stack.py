"""One api-server + dag-processor + scheduler on the test DAGs, shared by the test modules of a worker that use it.

A test uses it through the ``shared_stack`` fixture (or ``shared_stack_manager``, for module-scoped fixtures).
The stack starts on first use and stops as soon as the next test does not use it, so no other test runs beside
its scheduler; consecutive modules that use it on one xdist worker share one start. Each test stays
independent: ``shared_mail`` gives it the SMTP sink with only its own emails, and at its end every unfinished
run of the test DAGs is marked failed (its tasks end).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.fixtures import SmtpSink, start_smtp, wait_for_housekeeping_pass
from tests.support.processes import AirflowStack, wait_until

MANAGER_FIXTURE = "shared_stack_manager"
TEST_DAG_IDS = ("cr_campaign", "cr_depends", "cr_plain", "cr_slow", "cr_stubborn")
# FAB allows 5 logins per 40 s per address; the tests on the shared stack each log in anew.
# A scheduler heartbeat every second: ``end_test_runs`` waits for one.
EXTRA_ENV = {"AIRFLOW__FAB__AUTH_RATE_LIMIT": "1000 per 1 second", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1"}
_MANAGER = pytest.StashKey["SharedStack"]()


class SharedStack:
    """The worker's shared stack and its SMTP sink, started on demand and stopped on ``down()``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.starts = 0
        self.processes: AirflowStack | None = None
        self.sink: SmtpSink | None = None
        self._running: ExitStack | None = None

    def up(self) -> AirflowStack:
        """The running stack: started now if it is not running (or one of its processes has exited)."""
        if self.processes is not None and not all(p.alive() for p in self.processes.processes.values()):
            self.down()
        if self.processes is None:
            from tests.browser.support import running_stack
            from tests.support.fixtures import TEST_DAGS

            self.starts += 1
            with ExitStack() as running:
                controller, sink = start_smtp()
                running.callback(controller.stop)
                log_root = self.root / f"start-{self.starts}"
                self.processes = running.enter_context(running_stack(sink.port, log_root, TEST_DAGS, EXTRA_ENV))
                self.sink, self._running = sink, running.pop_all()
        return self.processes

    def down(self) -> None:
        """Stop the stack and its SMTP sink, if running."""
        running, self._running, self.processes, self.sink = self._running, None, None, None
        if running is not None:
            running.close()

    def fresh_mail(self) -> SmtpSink:
        """The sink, emptied once every email already due has gone out; no email of an earlier test left queued."""
        from airflow.utils.session import create_session
        from campaign_runs.tables import email_outbox
        from sqlalchemy import delete

        self.up()
        assert self.sink is not None
        wait_for_housekeeping_pass(self.sink)  # a pass of the scheduler's housekeeper sent whatever was due
        with create_session() as session:
            session.execute(delete(email_outbox))
        self.sink.forget()
        return self.sink


def end_test_runs() -> None:
    """Mark every unfinished run of the test DAGs failed, the way Airflow's UI does: its tasks see it and end.

    Then wait for a scheduler heartbeat: the loop that may have read such a run as running is over, so a later
    test may delete the run (``tests/campaign_runs``' ``clean_state``) without pulling it from under the loop.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.dags.campaigns.runs import mark_run_failed

    with create_session() as session:
        unfinished = session.execute(
            select(DagRun.dag_id, DagRun.run_id).where(
                DagRun.dag_id.in_(TEST_DAG_IDS), DagRun.state.in_(("queued", "running"))
            )
        ).all()
    if not unfinished:
        return
    for dag_id, run_id in unfinished:
        mark_run_failed(dag_id, run_id)
    marked = datetime.now(UTC)
    wait_until(lambda: (beat := scheduler_heartbeat()) is not None and beat > marked, timeout=60, message="heartbeat")


def scheduler_heartbeat() -> datetime | None:
    """The latest heartbeat of a running scheduler (the shared stack's: the only one running on this DB)."""
    from airflow.jobs.job import Job
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.max(Job.latest_heartbeat)).where(Job.job_type == "SchedulerJob", Job.state == "running")
        )


@pytest.fixture(scope="session")
def shared_stack_manager(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, airflow_db: None
) -> Iterator[SharedStack]:
    """The worker's ``SharedStack``; module-scoped fixtures call its ``up()`` for the stack."""
    manager = SharedStack(tmp_path_factory.mktemp("shared-stack"))
    request.config.stash[_MANAGER] = manager
    try:
        yield manager
    finally:
        manager.down()
        del request.config.stash[_MANAGER]


@pytest.fixture
def shared_stack(shared_stack_manager: SharedStack) -> Iterator[AirflowStack]:
    """The shared stack for one test; no run of the test DAGs is left going after it."""
    yield shared_stack_manager.up()
    end_test_runs()


@pytest.fixture
def shared_mail(shared_stack_manager: SharedStack, monkeypatch: pytest.MonkeyPatch) -> SmtpSink:
    """The shared stack's SMTP server with only this test's emails; this process's ``[smtp]`` points at it too."""
    sink = shared_stack_manager.fresh_mail()
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(sink.port))
    return sink


def uses_shared_stack(item: pytest.Item) -> bool:
    """Whether the test uses the shared stack."""
    return MANAGER_FIXTURE in getattr(item, "fixturenames", ())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the shared stack once the test after this one does not use it (after the fixtures' teardown)."""
    try:
        return (yield)
    finally:
        manager = item.config.stash.get(_MANAGER, None)
        if manager is not None and (nextitem is None or not uses_shared_stack(nextitem)):
            manager.down()
