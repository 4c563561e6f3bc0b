"""Stop, crash and Restart with a real scheduler, api-server, dag-processor, LocalExecutor workers and SMTP sink.

flash_sale sends email, SMS and push in batches of 250 at 10 messages/s, the case of a rate-limited relay, to its
CSV audience (dags/campaigns/data/flash_sale.csv: SIZE rows, each valid on every channel). A channel whose pace is
not under test goes unlimited: the Restart's (its params override the run's rates) and, in the SIGKILL test, the
channels other than email, which the kill does not touch.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.dags.campaigns.runs import (
    TimedSmtpSink,
    kill_task_process,
    plugin_restart,
    plugin_stop,
    run_state,
    scheduler_stack,
    sink_records,
    stuck,
    task_states,
    trigger,
    wait_for_dag,
    wait_quiet,
    wait_run_done,
    xcoms,
)
from tests.dags.conftest import FLASH_SALE_CSV, csv_rows
from tests.support.airflow_env import free_port
from tests.support.processes import AirflowStack, wait_until

DAG_ID = "flash_sale"
SIZE, BATCH, RATE = csv_rows(FLASH_SALE_CSV), 250, 10
CHANNELS = ("email", "sms", "push")
UNLIMITED = 0  # a rate of 0 messages/s: no limit
STOP_AFTER = 30
LAST_MESSAGE_AFTER_STOP = 1.0


@dataclass
class Stack:
    """The Airflow processes, the timed SMTP sink and the sink directory they share."""

    airflow: AirflowStack
    smtp: TimedSmtpSink
    sink_dir: Path


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One Airflow stack for the module, sending email to a timed SMTP sink."""
    smtp = TimedSmtpSink()
    port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    home = Path(tempfile.mkdtemp(prefix="campaign-stop-e2e-"))
    sink_dir = home / "sinks"
    env = {**os.environ, "AIRFLOW__SMTP__SMTP_PORT": str(port), "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(sink_dir)}
    try:
        with scheduler_stack(env, home / "logs") as airflow:
            wait_for_dag(DAG_ID, airflow)
            yield Stack(airflow, smtp, sink_dir)
    finally:
        controller.stop()


def unlimited(*channels: str) -> dict[str, Any]:
    """Params or conf taking every limit off the channels' rates."""
    return {f"{channel}_rate_limit_per_second": UNLIMITED for channel in channels}


def start_run(stack: Stack, name: str, limited: tuple[str, ...] = CHANNELS) -> str:
    """Trigger a flash_sale run (every channel 250 per batch, the ``limited`` ones at 10/s) and wait for ~30 emails."""
    conf: dict[str, Any] = {}
    for channel in CHANNELS:
        conf[f"{channel}_batch_size"] = BATCH
        conf[f"{channel}_rate_limit_per_second"] = RATE if channel in limited else UNLIMITED
    run_id = trigger(DAG_ID, conf, run_id=f"{name}_{os.getpid()}_{time.time_ns()}")
    deadline = time.monotonic() + 180
    while len(stack.smtp.of_run(run_id)) < STOP_AFTER:
        if time.monotonic() > deadline:
            states = task_states(DAG_ID, run_id)
            raise AssertionError(
                f"never sent {STOP_AFTER} emails: run {run_state(DAG_ID, run_id)}, tasks {states}\n"
                f"{stuck(DAG_ID, run_id)}\n{stack.airflow.logs()}"
            )
        time.sleep(0.02)
    return run_id


def sink_times(stack: Stack, channel: str, run_id: str) -> list[float]:
    """Wall-clock times of one run's SMS or push messages."""
    records = sink_records(stack.sink_dir, DAG_ID, channel)
    return [dt.datetime.fromisoformat(r["sent_at"]).timestamp() for r in records if r["run_id"] == run_id]


def in_doubt(stack: Stack, channel: str, run_id: str) -> set[str]:
    """Recipients the ledger holds in doubt for the channel, claimed by ``run_id``."""
    import sqlite3

    path = stack.sink_dir / DAG_ID / "ledger.sqlite"
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT recipient FROM deliveries WHERE channel=? AND run_id=? AND status='pending'", (channel, run_id)
        )
        return {row[0] for row in rows}
    finally:
        connection.close()


def recipients_sent(stack: Stack, channel: str, run_ids: set[str]) -> list[str]:
    """Recipient ids of every message the runs sent on the channel, duplicates included."""
    if channel == "email":
        return [recipient for run_id in run_ids for _, recipient in stack.smtp.of_run(run_id)]
    return [r["recipient"] for r in sink_records(stack.sink_dir, DAG_ID, channel) if r["run_id"] in run_ids]


def restart_and_check_exactly_once(stack: Stack, run_id: str) -> dict[str, Any]:
    """Restart through the plugin, wait for the new run; every channel reached everyone once (or in doubt)."""
    email_before = {recipient for _, recipient in stack.smtp.of_run(run_id)}
    new_run_id = plugin_restart(DAG_ID, run_id, params=unlimited(*CHANNELS))
    assert wait_run_done(DAG_ID, new_run_id) == "success", stack.airflow.logs()
    values = xcoms(DAG_ID, new_run_id)
    for channel in CHANNELS:
        sent = recipients_sent(stack, channel, {run_id, new_run_id})
        duplicates = {recipient: n for recipient, n in Counter(sent).items() if n > 1}
        assert not duplicates, (channel, duplicates)
        doubt = in_doubt(stack, channel, run_id)
        assert len(set(sent) | doubt) == SIZE, (channel, len(sent), doubt)
        assert len(doubt) <= 1, (channel, doubt)
        progress = values[(f"send_{channel}", "campaign_progress")]
        assert progress["in_doubt"] == len(doubt), (channel, progress)
        assert values[(f"send_{channel}", "return_value")]["in_doubt"] == len(doubt)
    second = {recipient for _, recipient in stack.smtp.of_run(new_run_id)}
    assert not email_before & second
    return values


@pytest.mark.slow
def test_plugin_stop_mid_batch_then_restart_reaches_everyone_once(stack: Stack) -> None:
    """Stop mid-batch (250 at 10/s): last message ≤ 1 s after Stop returns; Restart: everyone once, nobody twice."""
    run_id = start_run(stack, "stop")
    plugin_stop(DAG_ID, run_id)
    stopped_at = time.time()
    wait_quiet(lambda: len(stack.smtp.of_run(run_id)), quiet_seconds=2)
    emails = stack.smtp.of_run(run_id)
    last = {
        "email": max(at for at, _ in emails),
        "sms": max(sink_times(stack, "sms", run_id), default=0.0),
        "push": max(sink_times(stack, "push", run_id), default=0.0),
    }
    assert STOP_AFTER <= len(emails) < SIZE
    for channel, at in last.items():
        assert at - stopped_at <= LAST_MESSAGE_AFTER_STOP, (channel, at - stopped_at)
    first = xcoms(DAG_ID, run_id)
    assert first[("send_email", "campaign_progress")]["sent"] == len(emails)
    assert first[("send_email", "campaign_progress")]["in_doubt"] == 0
    wait_until(
        lambda: {task_states(DAG_ID, run_id)[f"send_{c}"] for c in CHANNELS} == {"failed"},
        timeout=60,
        message="every channel task failed (stopped)",
    )
    assert not in_doubt(stack, "email", run_id), "a Stop leaves nobody in doubt"

    values = restart_and_check_exactly_once(stack, run_id)
    assert values[("send_email", "return_value")]["already_reached"] == len(emails)
    assert values[("send_email", "campaign_progress")]["sent"] == SIZE - len(emails)


@pytest.mark.slow
def test_sigkill_of_the_task_then_restart_sends_nobody_twice(stack: Stack) -> None:
    """SIGKILL of the email task mid-batch: at most one recipient in doubt, not resent; everyone else reached once."""
    run_id = start_run(stack, "kill", limited=("email",))
    kill_task_process(DAG_ID, run_id, "send_email", ancestor=stack.airflow.processes["scheduler"].pid)
    wait_run_done(DAG_ID, run_id)
    assert task_states(DAG_ID, run_id)["send_email"] == "failed"
    assert len(stack.smtp.of_run(run_id)) < SIZE
    restart_and_check_exactly_once(stack, run_id)
