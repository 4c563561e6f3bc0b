"""Resend in doubt, for real: scheduler, LocalExecutor, the PostgreSQL ledger through a Connection, an SMTP server.

A flash_sale run (email in one batch of 250 at 10/s) is cut mid-batch by SIGKILL of its email task while the SMTP
server holds one message unanswered: that recipient is in doubt (its ledger row stays ``pending``),
deterministically. The server either kept the message (a relay that delivers although its "250" never arrived) or
lost it. The run is then restarted through the plugin's Restart asking to resend in doubt (conf
``campaign_resend_in_doubt: true``). The channels whose pace is not under test go unlimited: SMS and push (the kill
does not touch them) and the Restart.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dags.campaigns.runs import (
    kill_task_process,
    plugin_restart,
    plugin_users,
    scheduler_stack,
    sink_records,
    trigger,
    wait_for_dag,
    wait_run_done,
    xcoms,
)
from tests.dags.conftest import FLASH_SALE_CSV, csv_rows
from tests.support.holding_smtp import Hold, HoldingSmtpSink, holding_smtp
from tests.support.ledger_db import LEDGER_CONN_ID, connection_uri, ledger_database, ledger_rows
from tests.support.processes import AirflowStack

DAG_ID = "flash_sale"
SIZE, BATCH, RATE = csv_rows(FLASH_SALE_CSV), 250, 10  # the CSV audience: every row valid on every channel
HELD_INDEX = 20
CHANNELS = ("email", "sms", "push")
UNLIMITED = {f"{channel}_rate_limit_per_second": 0 for channel in CHANNELS}  # 0 messages/s: no limit


@dataclass
class Stack:
    """The Airflow processes, the SMTP server, the sink directory and the ledger database."""

    airflow: AirflowStack
    smtp: HoldingSmtpSink
    sink_dir: Path
    ledger_db: str


def ledger_environment(database: str) -> dict[str, str]:
    """The ledger in ``database``, through Connection ``campaign_ledger`` given as an environment variable."""
    return {
        f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}": connection_uri(database),
        "AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID": LEDGER_CONN_ID,
    }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One Airflow stack for the module; its channel tasks keep their ledger in a PostgreSQL database of its own."""
    home = Path(tempfile.mkdtemp(prefix="campaign-resend-e2e-"))
    plugin_users()
    sink_dir = home / "sinks"
    with ledger_database("resend_e2e") as database, holding_smtp() as (smtp, port):
        env = {
            **os.environ,
            **ledger_environment(database),
            "AIRFLOW__SMTP__SMTP_PORT": str(port),
            "AIRFLOW__SMTP__SMTP_TIMEOUT": "120",  # the held message must not time out before the kill
            "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(sink_dir),
        }
        with scheduler_stack(env, home / "logs") as airflow:
            wait_for_dag(DAG_ID, airflow)
            yield Stack(airflow, smtp, sink_dir, database)


def run_conf() -> dict[str, Any]:
    """Every channel in one batch of 250, email at 10 messages/s, SMS and push unlimited."""
    conf: dict[str, Any] = {**UNLIMITED, "email_rate_limit_per_second": RATE}
    for channel in CHANNELS:
        conf[f"{channel}_batch_size"] = BATCH
    return conf


def run_conf_of(run_id: str) -> dict[str, Any]:
    """A run's conf as stored by Airflow."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return dict(session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run_id).one().conf or {})


def kill_while_held(stack: Stack, delivered: bool) -> tuple[str, str]:
    """Start a run, SIGKILL its email task while its message #HELD_INDEX waits for the server's reply."""
    run_id = f"resend_{delivered}_{os.getpid()}_{time.time_ns()}"
    hold = Hold(run_id, HELD_INDEX, delivered)
    stack.smtp.hold = hold
    trigger(DAG_ID, run_conf(), run_id=run_id)
    assert hold.holding.wait(180), f"message {HELD_INDEX} never arrived\n{stack.airflow.logs()}"
    kill_task_process(DAG_ID, run_id, "send_email", ancestor=stack.airflow.processes["scheduler"].pid)
    hold.release.set()
    assert wait_run_done(DAG_ID, run_id) == "failed"
    assert hold.recipient is not None
    return run_id, hold.recipient


def pending(stack: Stack, channel: str, run_ids: set[str]) -> list[str]:
    """Recipients in doubt on a channel, their rows held by one of ``run_ids``."""
    rows = ledger_rows(stack.ledger_db, "channel=%s AND status='pending' AND run_id=ANY(%s)", (channel, list(run_ids)))
    return [row[1] for row in rows]


def sent_per_recipient(stack: Stack, channel: str, run_ids: set[str]) -> dict[str, int]:
    """Messages each recipient got from the runs: counted by the SMTP server for email, in the sink file otherwise."""
    if channel == "email":
        return dict(stack.smtp.recipients(run_ids))
    counts: dict[str, int] = {}
    for record in sink_records(stack.sink_dir, DAG_ID, channel):
        if record["run_id"] in run_ids:
            counts[record["recipient"]] = counts.get(record["recipient"], 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("delivered", [True, False], ids=["relay-kept-it", "relay-lost-it"])
def test_restart_with_resend_in_doubt_sends_the_doubtful_recipient_once_more(stack: Stack, delivered: bool) -> None:
    """Everyone gets exactly one message, except the recipient in doubt: one more from the restart, whatever it had.

    So the recipient in doubt ends with 2 messages when the relay kept the first (the price of resending a
    message whose outcome is unknown) and with exactly 1 when it lost it; nobody else ever gets 2.
    """
    run_id, held = kill_while_held(stack, delivered)
    assert pending(stack, "email", {run_id}) == [held], "the message without a reply is the only one in doubt"
    first = stack.smtp.recipients({run_id})
    assert len(first) == HELD_INDEX + delivered

    new_run_id = plugin_restart(DAG_ID, run_id, resend_in_doubt=True, params=UNLIMITED)
    assert run_conf_of(new_run_id)["campaign_resend_in_doubt"] is True, "the plugin asked for the resend"
    assert wait_run_done(DAG_ID, new_run_id) == "success", stack.airflow.logs()

    assert stack.smtp.recipients({new_run_id})[held] == 1, "the restart sent once more to the recipient in doubt"
    for channel in CHANNELS:
        counts = sent_per_recipient(stack, channel, {run_id, new_run_id})
        assert len(counts) == SIZE, (channel, len(counts))
        expected = {r: 1 for r in counts} | ({held: 2} if channel == "email" and delivered else {})
        assert counts == expected, channel
        assert pending(stack, channel, {run_id, new_run_id}) == [], channel
    values = xcoms(DAG_ID, new_run_id)
    progress = values[("send_email", "campaign_progress")]
    assert progress == {
        "channel": "email",
        "total": SIZE - HELD_INDEX,
        "sent": SIZE - HELD_INDEX,
        "failed": 0,
        "in_doubt": 0,
        "suppressed": 0,
        "skipped": {},
        "retried": 0,
        "reasons": {},
    }
    assert values[("send_email", "return_value")]["already_reached"] == HELD_INDEX
