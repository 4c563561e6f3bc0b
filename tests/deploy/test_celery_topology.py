"""The production topology without Docker: PostgreSQL, Redis, CeleryExecutor, two API servers, real SMTP.

One module-scoped stack (its own PostgreSQL database, its own Redis DB number, an aiosmtpd server,
``airflow api-server`` twice, scheduler, dag-processor, triggerer and a Celery worker) serves every
scenario. Everything goes through the plugin's HTTP interface (``/campaign-runs``) as a logged-in
user with a JWT from ``POST /auth/token``; runs are triggered through Airflow's public ``/api/v2``.
The database is read directly only to look at what the API does not show (the email outbox).

Scenarios, in order (later ones do not depend on earlier ones passing):

1. Stop a sending run, Restart it, Stop the new run and Skip it: states, work list, one email each.
2. SMTP server down during Stop and Skip: the API answers at once; after the server is back each
   email arrives exactly once (retries start after ``[campaign_runs] email_retry_base_seconds``).
3. The scheduler killed while a run is ``stopping`` (a task that ignores stops): a new scheduler
   finishes the stop, one email.
4. One API server killed right after a Restart it served: the other serves the result, one email.
5. The Celery worker killed during a run that is then stopped: the run still ends ``stopped``.

Finally every email of the module must have arrived exactly once and the outbox must be empty.

Settings that differ from the defaults, to keep the module short:
``[campaign_runs] stop_grace_seconds = 8`` (wide ``stopping`` window for scenario 3),
``email_retry_base_seconds = 1`` / ``email_retry_max_seconds = 4`` (fast retries after an SMTP outage),
``email_claim_seconds = 10`` (an email claimed by a killed API server is retried after 10 s, not 300 s).

Needs PostgreSQL (``CAMPAIGN_RUNS_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432``) and Redis
(``CAMPAIGN_RUNS_TEST_REDIS``, default ``redis://127.0.0.1:6379``; the first free DB number from
``CAMPAIGN_RUNS_TEST_REDIS_DB``, default 7, claimed with an owner key and flushed at start and end).
Timings are printed with a ``TIMING`` prefix.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from functools import partial

import psutil
import pytest
import sqlalchemy as sa

from tests.deploy.celery_support import REDIS_SERVER, claim_redis_db, flush_redis
from tests.deploy.topology_support import (
    EMAIL_CLAIM_SECONDS,
    STOP_GRACE_SECONDS,
    Topology,
    create_user,
    finish,
    login,
    show_timings,
    subject,
    timing,
)
from tests.support.airflow_env import PG_SERVER, create_pg_database, drop_pg_database, environment, free_port, migrate
from tests.support.fixtures import TEST_DAGS, start_smtp
from tests.support.processes import airflow_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topology(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """The whole production topology, started once for the module."""
    module_started = time.monotonic()
    home = tmp_path_factory.mktemp("celery-topology")
    database = f"campaign_runs_celery_{os.getpid()}"
    create_pg_database(database)
    redis_db = claim_redis_db()
    smtp, sink = start_smtp()
    api_1, api_2 = free_port(), free_port()
    pg_url = f"{PG_SERVER}/{database}"
    env = {
        **os.environ,
        **environment(home, backend="postgres", pg_database=database),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg_url}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS),
        # Only the campaigns the scenarios use get unpaused (the other test DAGs would take worker slots).
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # The worker's and triggerer's log servers default to fixed ports (8793, 8794) that another
        # Airflow on the machine may hold.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("CAMPAIGN_RUNS_TEST_LOG_LEVEL", "WARNING"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_1}/execution/",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "task-logs"),
        "AIRFLOW__SMTP__SMTP_PORT": str(sink.port),
        "AIRFLOW__CAMPAIGN_RUNS__HOUSEKEEPING_INTERVAL": "0.5",
        "AIRFLOW__CAMPAIGN_RUNS__STOP_GRACE_SECONDS": str(STOP_GRACE_SECONDS),
        "AIRFLOW__CAMPAIGN_RUNS__EMAIL_RETRY_BASE_SECONDS": "1",
        "AIRFLOW__CAMPAIGN_RUNS__EMAIL_RETRY_MAX_SECONDS": "4",
        "AIRFLOW__CAMPAIGN_RUNS__EMAIL_CLAIM_SECONDS": str(EMAIL_CLAIM_SECONDS),
    }
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://", 1), pool_pre_ping=True)
    try:
        try:
            migrate(env)
        except subprocess.CalledProcessError as error:
            raise AssertionError(
                f"airflow db migrate failed:\n{(error.stderr or b'').decode(errors='replace')[-4000:]}"
            ) from None
        # The first FAB start on a fresh database writes the roles' permissions; two processes doing it
        # at once collide (UniqueViolation on ab_permission_view_role), so one user is created first.
        finish(create_user(env, "alice"))
        with airflow_stack(env, home / "logs") as stack:
            admin = create_user(env, "admin")
            stack.start("api-server", name="api-1", port=api_1)
            stack.start("api-server", name="api-2", port=api_2)
            stack.start("dag-processor")
            stack.start("scheduler")
            stack.start("triggerer")
            stack.start("celery-worker")
            finish(admin)
            stack.wait_healthy("api-1", timeout=300)
            stack.wait_healthy("api-2", timeout=300)
            topo = Topology(stack, env, smtp, sink, engine, login(stack.url("api-1"), "alice"))
            for dag_id in ("cr_slow", "cr_stubborn"):
                topo.wait(partial(topo.unpause, dag_id), 240, f"DAG {dag_id} parsed and unpaused", interval=0.5)
            ready = time.monotonic() - module_started
            timing(f"stack ready (migrate, users, 2 api-servers, worker, DAGs parsed) {ready:.1f}s")
            yield topo
            smtp = topo.smtp
    finally:
        with contextlib.suppress(Exception):  # already stopped by a failing scenario
            smtp.stop()
        engine.dispose()
        flush_redis(redis_db)
        drop_pg_database(database)
        timing(f"module total {time.monotonic() - module_started:.1f}s")
        show_timings(request)


# ---------------------------------------------------------------- scenarios


def test_stop_restart_skip_through_the_api(topology: Topology) -> None:
    t = topology
    run_id = t.trigger("cr_slow")
    t.wait_sending("cr_slow", run_id)

    result, answered = t.act("stop", "cr_slow", run_id, "Wrong segment")
    stop_sent = time.monotonic()
    t.check(result["status_after"] == "stopping", f"stop answered {result}")
    stopped_after, seen = t.wait_status("cr_slow", run_id, "stopped", 60)
    t.check(set(seen) <= {"stopping", "stopped"}, f"statuses seen after stop: {seen}")
    stopped_email = subject("stopped", "cr_slow", run_id)
    t.expect_email(stopped_email)
    email_after = time.monotonic() - stop_sent
    [message] = [m for m in t.sink.messages if m["Subject"] == stopped_email]
    t.check(message["To"] == "alice@example.com", f"stop email to {message['To']}")
    details = t.run("cr_slow", run_id)
    t.check(details["dag_run_state"] == "failed" and "restart" in details["allowed_actions"], f"stopped run: {details}")
    t.check(
        [(i["run_id"], i["reason"]) for i in t.worklist() if i["dag_id"] == "cr_slow"] == [(run_id, "stopped")],
        f"work list after stop: {t.worklist()}",
    )
    timing(
        f"main stop: answered {answered:.2f}s, stop->stopped {stopped_after:.2f}s (seen {seen}), "
        f"stop->email {email_after:.2f}s"
    )

    result, answered = t.act("restart", "cr_slow", run_id, "Segment fixed")
    restart_sent = time.monotonic()
    new_run_id = result["new_run_id"]
    t.check(bool(new_run_id) and result["status_after"] == "skipped", f"restart answered {result}")
    restart_email_after = t.expect_email(subject("restarted", "cr_slow", run_id, new_run_id))
    new_running_after = t.wait_sending("cr_slow", new_run_id)
    t.check(t.status("cr_slow", run_id) == "skipped", "restarted run is not skipped")
    new = t.run("cr_slow", new_run_id)
    t.check(new["restart_of"] == run_id, f"new run: {new}")
    t.check(not [i for i in t.worklist() if i["dag_id"] == "cr_slow"], f"work list after restart: {t.worklist()}")
    timing(
        f"main restart: answered {answered:.2f}s, restart->email {restart_email_after:.2f}s, "
        f"restart->new run sending {time.monotonic() - restart_sent:.2f}s (waited {new_running_after:.2f}s)"
    )

    t.act("stop", "cr_slow", new_run_id, "Pause for legal review")
    t.wait_status("cr_slow", new_run_id, "stopped", 60)
    t.expect_email(subject("stopped", "cr_slow", new_run_id))
    result, answered = t.act("skip", "cr_slow", new_run_id, "Not this week")
    t.check(result["status_after"] == "skipped", f"skip answered {result}")
    skip_email_after = t.expect_email(subject("skipped", "cr_slow", new_run_id))
    t.check(t.status("cr_slow", new_run_id) == "skipped", "skipped run")
    t.check(not [i for i in t.worklist() if i["dag_id"] == "cr_slow"], f"work list after skip: {t.worklist()}")
    timing(f"main skip: answered {answered:.2f}s, skip->email {skip_email_after:.2f}s")
    t.assert_each_email_once()


def test_smtp_server_down_during_actions(topology: Topology) -> None:
    t = topology
    run_id = t.trigger("cr_slow")
    t.wait_sending("cr_slow", run_id)
    t.smtp.stop()
    down_at = time.monotonic()
    try:
        result, stop_answered = t.act("stop", "cr_slow", run_id, "SMTP outage stop")
        t.wait_status("cr_slow", run_id, "stopped", 60)
        # The status reads "stopped" as soon as no task runs; the housekeeper finishes the stop (work list,
        # email) on its next pass. Acting in between loses a race (see the module's report), so wait for it.
        t.wait(lambda: any(i["run_id"] == run_id for i in t.worklist()), 30, "the stop to reach the work list")
        result, skip_answered = t.act("skip", "cr_slow", run_id, "SMTP outage skip")
        t.check(result["status_after"] == "skipped", f"skip answered {result}")
        t.check(stop_answered < 5 and skip_answered < 5, f"answers took {stop_answered:.2f}s / {skip_answered:.2f}s")
        stopped, skipped = subject("stopped", "cr_slow", run_id), subject("skipped", "cr_slow", run_id)

        def both_failed_once() -> bool:
            rows = [t.outbox_row(stopped), t.outbox_row(skipped)]
            return all(r is not None and r.status == "pending" and r.attempts >= 1 and r.last_error for r in rows)

        try:
            t.wait(both_failed_once, 30, "both emails to fail at least once while SMTP is down")
        except AssertionError as error:
            raise AssertionError(f"outbox: {t.outbox()}\n{error}") from None
        time.sleep(2)
    finally:
        t.restart_smtp()
    up_at = time.monotonic()
    attempts = {r.kind: r.attempts for r in (t.outbox_row(stopped), t.outbox_row(skipped))}
    stop_email = t.expect_email(stopped)
    skip_email = t.expect_email(skipped)
    timing(
        f"smtp down: stop answered {stop_answered:.2f}s, skip answered {skip_answered:.2f}s, "
        f"down {up_at - down_at:.1f}s, "
        f"failed attempts before recovery {attempts}, recovery->stopped email {stop_email:.2f}s, "
        f"recovery->skipped email {skip_email:.2f}s"
    )
    t.assert_each_email_once()
    for wanted in (stopped, skipped):
        row = t.outbox_row(wanted)
        t.check(row.status == "sent", f"outbox row after recovery: {row}")


def test_scheduler_killed_while_a_run_is_stopping(topology: Topology) -> None:
    t = topology
    run_id = t.trigger("cr_stubborn")
    t.wait_sending("cr_stubborn", run_id)
    pid = t.ti_pid("cr_stubborn", run_id)
    result, _ = t.act("stop", "cr_stubborn", run_id, "Stop the stubborn one")
    stop_sent = time.monotonic()
    t.check(result["status_after"] == "stopping", f"stop answered {result}")
    old = next(name for name in reversed(list(t.stack.processes)) if name.startswith("scheduler"))
    t.stack.processes[old].kill()
    killed_at = time.monotonic() - stop_sent
    t.check(t.status("cr_stubborn", run_id) == "stopping", "run no longer stopping right after the scheduler died")
    t.stack.start("scheduler", name=f"{old}-restarted")
    _, seen = t.wait_status("cr_stubborn", run_id, "stopped", 120)
    stopped_after = time.monotonic() - stop_sent
    t.check(stopped_after >= STOP_GRACE_SECONDS - 1, f"stopped after {stopped_after:.2f}s, before the grace period")
    t.expect_email(subject("stopped", "cr_stubborn", run_id))
    email_after = time.monotonic() - stop_sent
    t.check(t.task_state("cr_stubborn", run_id) == "failed", "stubborn task not failed")
    gone = "n/a"
    if pid:
        with contextlib.suppress(psutil.NoSuchProcess):
            try:
                psutil.Process(pid).wait(timeout=30)
            except psutil.TimeoutExpired:
                late = time.monotonic() - stop_sent
                raise t.fail(f"stubborn task process {pid} still alive {late:.0f}s after the stop") from None
        gone = f"{time.monotonic() - stop_sent:.1f}s"
    timing(
        f"scheduler restart: killed {killed_at:.2f}s after stop, stop->stopped {stopped_after:.2f}s (seen {seen}), "
        f"stop->email {email_after:.2f}s, task process gone after {gone}"
    )
    t.check(
        [(i["run_id"], i["reason"]) for i in t.worklist() if i["dag_id"] == "cr_stubborn"] == [(run_id, "stopped")],
        f"work list: {t.worklist()}",
    )
    t.assert_each_email_once()


def test_api_server_killed_right_after_an_action(topology: Topology) -> None:
    t = topology
    run_id = t.trigger("cr_slow", name="api-2")
    t.wait_sending("cr_slow", run_id, name="api-2")
    t.act("stop", "cr_slow", run_id, "Stop before the crash", name="api-2")
    t.wait_status("cr_slow", run_id, "stopped", 60, name="api-2")
    t.expect_email(subject("stopped", "cr_slow", run_id))

    result, answered = t.act("restart", "cr_slow", run_id, "Restart, then crash", name="api-2")
    t.stack.processes["api-2"].kill()
    acted = time.monotonic()
    new_run_id = result["new_run_id"]
    t.check(bool(new_run_id), f"restart answered {result}")
    t.check(t.status("cr_slow", run_id) == "skipped", "api-1 does not show the restarted run as skipped")
    wanted = subject("restarted", "cr_slow", run_id, new_run_id)
    t.claimed_by_killed.add(wanted)  # api-2 was sending it when killed
    email_after = t.expect_email(wanted, timeout=EMAIL_CLAIM_SECONDS + 30)
    row = t.outbox_row(wanted)
    sent_by = "api-2 before it died" if row.attempts == 1 else f"a retry (attempts {row.attempts})"
    new_sending_after = t.wait_sending("cr_slow", new_run_id)
    timing(
        f"api-server killed: restart answered {answered:.2f}s, kill->email {email_after:.2f}s (sent by {sent_by}), "
        f"kill->new run sending {new_sending_after:.2f}s"
    )
    t.check(not [i for i in t.worklist() if i["dag_id"] == "cr_slow"], f"work list: {t.worklist()}")
    t.act("stop", "cr_slow", new_run_id, "Clean up")
    t.wait_status("cr_slow", new_run_id, "stopped", 60)
    t.expect_email(subject("stopped", "cr_slow", new_run_id))
    t.assert_each_email_once()
    t.check(time.monotonic() - acted < 120, "api-server scenario too slow")


def test_celery_worker_killed_during_a_run_that_is_then_stopped(topology: Topology) -> None:
    t = topology
    run_id = t.trigger("cr_slow")
    t.wait_sending("cr_slow", run_id)
    pid = t.ti_pid("cr_slow", run_id)
    t.stack.processes["celery-worker"].kill()
    killed_at = time.monotonic()
    # The task process runs in its own process group (the Task SDK supervisor puts it there), so the
    # kill of the worker's group leaves it behind without its supervisor.
    orphan_alive = bool(pid) and psutil.pid_exists(pid)
    try:
        result, _ = t.act("stop", "cr_slow", run_id, "Worker is gone")
        stop_sent = time.monotonic()
        t.check(result["status_after"] in ("stopping", "stopped"), f"stop answered {result}")
        stopped_after, seen = t.wait_status("cr_slow", run_id, "stopped", 120)
        email_after = t.expect_email(subject("stopped", "cr_slow", run_id))
        orphan = "no orphaned task process"
        if orphan_alive and pid:
            try:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).wait(timeout=15)
                orphan = f"orphaned task process ended {time.monotonic() - killed_at:.1f}s after the worker kill"
            except psutil.TimeoutExpired:
                orphan = f"orphaned task process still alive {time.monotonic() - killed_at:.0f}s after the worker kill"
        timing(
            f"worker killed: stop->stopped {stopped_after:.2f}s (seen {seen}), "
            f"stop->email {time.monotonic() - stop_sent:.2f}s (waited {email_after:.2f}s), {orphan}"
        )
        state = t.task_state("cr_slow", run_id)
        t.check(state in ("failed", "success"), f"task state {state}")
        t.assert_each_email_once()
    finally:
        if pid and psutil.pid_exists(pid):
            try:
                process = psutil.Process(pid)
                if "airflow" in " ".join(process.cmdline()) or process.name().startswith("airflow"):
                    process.kill()
            except psutil.Error:
                pass


def test_every_email_once_and_the_outbox_empty(topology: Topology) -> None:
    t = topology
    t.assert_each_email_once(settle=2.0)
    rows = t.outbox()
    t.check(all(r.status == "sent" for r in rows), f"outbox rows not sent: {[r for r in rows if r.status != 'sent']}")
    t.check(len(rows) == len(t.sink.messages), f"{len(rows)} outbox rows, {len(t.sink.messages)} emails")
