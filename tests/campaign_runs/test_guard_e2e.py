"""The guard end to end: a real scheduler, a real SMTP server refusing some recipients, the owner's stop email.

The campaign sends 200 emails in batches of 20 with ``guard: {max_failed_percent: 5}``; the server answers
550 to RCPT for every tenth recipient, so the first batch fails 2 of 20 (10%). The channel stops at once,
the scheduler's housekeeper stops the run the plugin's way, as the campaign's owner, once.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from campaign_runs import core
from campaign_runs.tables import run_action
from sqlalchemy import select

from tests.dags.campaigns.runs import header, scheduler_stack, task_states, trigger, wait_for_dag, xcoms
from tests.support.airflow_env import free_port
from tests.support.fixtures import body_of, sync_test_dags, wait_for_housekeeping_pass
from tests.support.processes import AirflowStack, wait_until

pytestmark = pytest.mark.slow

DAG_ID = "cr_guarded"
OWNER, OWNER_EMAIL = "growth-team", "growth-team@example.com"  # no Airflow user has this name
NOTE = "Guard: email failed 2 of 20 (10.0%) in the last batch, over 5%"
CAMPAIGN = f"""
id: {DAG_ID}
description: Campaign whose email channel is guarded.
owner: {OWNER}
owner_email: {OWNER_EMAIL}
schedule: {{cron: null, start_date: 2025-01-01}}
audience: {{segment: guarded, size: 200, population: 1000}}
channels:
  email:
    subject: "Hello $first_name"
    body: "Hello $first_name, this is a guarded campaign."
    batch_size: 20
    guard: {{max_failed_percent: 5}}
"""
LOADER = """
# The Airflow DAG of the campaign file beside this one (the dag-processor reads files naming airflow and dag).
from pathlib import Path

from campaign_runs.factory.factory import build_dag
from campaign_runs.factory.spec import load_spec

dag = build_dag(load_spec(Path(__file__).with_name("{name}.yaml")))
"""


def refused(address: str) -> bool:
    """Every tenth recipient of the synthetic audience (``first.last.<member>@example.com``)."""
    local = address.strip("<>").split("@", 1)[0]
    number = local.rsplit(".", 1)[-1]
    return number.isdigit() and int(number) % 10 == 0


@dataclass
class RefusingSmtp:
    """An SMTP server (aiosmtpd) answering 550 to RCPT for some campaign recipients, keeping what it accepts."""

    messages: list[Message] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        """Refuse every tenth recipient for good; accept anyone else (the plugin's emails too)."""
        if refused(address):
            with self.lock:
                self.refusals.append(address)
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message, with its envelope recipients."""
        message = message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def campaign(self, run_id: str) -> list[Message]:
        """The run's campaign emails the server accepted."""
        with self.lock:
            return [m for m in self.messages if m["X-Campaign-Run-Id"] and header(m, "X-Campaign-Run-Id") == run_id]

    def plugin(self) -> list[Message]:
        """The plugin's emails (stop emails and housekeeping probes)."""
        with self.lock:
            return [m for m in self.messages if not m["X-Campaign-Run-Id"]]

    def subjects(self) -> list[str]:
        """Subjects of the plugin's emails (what ``wait_for_housekeeping_pass`` watches)."""
        return [str(m["Subject"]) for m in self.plugin()]


@dataclass
class Stack:
    """The Airflow processes and the refusing SMTP server."""

    airflow: AirflowStack
    smtp: RefusingSmtp


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """api-server + dag-processor + scheduler on a DAGs folder holding only the guarded campaign."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.yaml").write_text(textwrap.dedent(CAMPAIGN))
    (dags / f"{DAG_ID}.py").write_text(LOADER.format(name=DAG_ID))
    smtp = RefusingSmtp()
    port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        **os.environ,
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__SMTP__SMTP_PORT": str(port),
        "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(tmp_path / "sinks"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "task-logs"),
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    }
    try:
        with scheduler_stack(env, tmp_path / "logs") as airflow:
            wait_for_dag(DAG_ID, airflow)
            yield Stack(airflow, smtp)
            print(airflow.logs()) if os.environ.get("CAMPAIGN_RUNS_SHOW_LOGS") else None
    finally:
        controller.stop()
        restore_test_dags()


def restore_test_dags() -> None:
    """The session's DAGs as before: no guarded campaign, the test campaigns active again.

    The dag-processor above parsed only the guarded campaign, so it marked the session's test DAGs stale.
    """
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound

    with contextlib.suppress(DagNotFound):
        delete_dag(DAG_ID)
    sync_test_dags()


def stop_actions(run_id: str) -> list[tuple[str, str]]:
    """(actor, note) of every Stop of the run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(run_action.c.actor, run_action.c.note).where(
                run_action.c.dag_id == DAG_ID, run_action.c.run_id == run_id, run_action.c.action == "stop"
            )
        )
        return [(actor, note) for actor, note in rows]


def test_guard_stops_a_failing_run_once_for_the_owner_with_a_real_smtp_server(stack: Stack) -> None:
    """10% refused in the first batch, over 5%: 18 emails leave, the run is stopped, the owner is told, once."""
    run_id = trigger(DAG_ID, {}, run_id=f"guard_{os.getpid()}_{time.time_ns()}")
    try:
        wait_until(lambda: core.get_run(DAG_ID, run_id).status == "stopped", timeout=240, message="run stopped")
    except AssertionError as error:
        raise AssertionError(f"{error}: {task_states(DAG_ID, run_id)}\n{stack.airflow.logs()}") from None

    # The channel stopped at once: only the first batch's accepted emails left, and its two refusals.
    assert len(stack.smtp.campaign(run_id)) == 18
    assert len(stack.smtp.refusals) == 2
    values = xcoms(DAG_ID, run_id)
    trip = values[("send_email", "campaign_guard")]
    assert (trip["note"], trip["batch_failed"], trip["batch_attempted"], trip["batches"]) == (NOTE, 2, 20, 1)
    assert values[("send_email", "campaign_progress")]["sent"] == 18
    assert task_states(DAG_ID, run_id) == {"build_audience": "success", "send_email": "failed", "summarise": "skipped"}

    # The plugin's Stop, as the owner: history, work list, and the stop email at the campaign's owner_email
    # (the run reads stopped once no task runs; the housekeeper's next pass writes the work list and the email).
    assert stop_actions(run_id) == [(OWNER, NOTE)]
    assert core.get_run(DAG_ID, run_id).note == NOTE
    stopped_subject = f"[Campaign Runs] Run {run_id} of {DAG_ID} stopped"
    wait_until(lambda: stopped_subject in stack.smtp.subjects(), timeout=60, message="the stop email")
    assert [entry.run_id for entry in core.worklist(OWNER)] == [run_id]
    [email] = [m for m in stack.smtp.plugin() if m["Subject"] == stopped_subject]
    assert email["X-Envelope-To"] == OWNER_EMAIL
    assert NOTE in body_of(email)

    # Once: two more housekeeping passes of the scheduler change nothing.
    for _ in range(2):
        wait_for_housekeeping_pass(stack.smtp)  # type: ignore[arg-type]
    assert stop_actions(run_id) == [(OWNER, NOTE)]
    assert stack.smtp.subjects().count(stopped_subject) == 1
    assert len(stack.smtp.campaign(run_id)) == 18
