"""Two tasks of the same slot and channel sending at once, each in its own process: nobody gets two messages.

The ledger-level tests check the claim itself; this one checks that the Dispatcher really asks it before every
message, with two real processes, a real SMTP server and each ledger backend.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port
from tests.support.ledger_db import connect_args, ledger_database

SIZE = 300
SMTP_SECONDS = 0.004  # per message: the two senders overlap for about a second


class SlowSink:
    """An SMTP server taking a little time per message, counting recipients and which run sent them."""

    def __init__(self) -> None:
        self.recipients: Counter[str] = Counter()
        self.runs: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        time.sleep(SMTP_SECONDS)
        run_id = next(
            line.split(b":", 1)[1].strip().decode()
            for line in envelope.original_content.splitlines()
            if line.startswith(b"X-Campaign-Run-Id:")
        )
        with self.lock:
            self.recipients.update(envelope.rcpt_tos)
            self.runs[run_id] += 1
        return "250 OK"


def send(run_id: str, port: int, ledger: tuple[str, Any], start: Any) -> None:
    """One channel task: the email channel's Dispatcher over the shared ledger (a spawned child process)."""
    from campaign_runs.factory.channels import DeliveryContext, EmailAdapter, Pacer, SmtpSettings
    from campaign_runs.factory.dispatch import Dispatcher
    from campaign_runs.factory.ledger import DeliveryLedger, PostgresLedger, SqliteLedger

    from tests.campaign_runs.factory.test_audience import plan

    smtp = SmtpSettings("127.0.0.1", port, starttls=False, ssl=False, timeout=30, mail_from="c@example.com")
    settings = {"subject": "Hi $first_name", "body": "Hello", "from_name": "", "reply_to": ""}
    folder = Path(ledger[1]) if ledger[0] == "sqlite" else Path("/nonexistent")
    adapter = EmailAdapter(DeliveryContext("c", run_id, "email", settings, folder, {}), Pacer(0), smtp)
    shared: DeliveryLedger = (
        SqliteLedger(folder / "ledger.sqlite", "c", "slot", "email")
        if ledger[0] == "sqlite"
        else PostgresLedger(ledger[1], "c", "slot", "email")
    )
    start.wait(60)
    with shared:
        Dispatcher(
            plan=plan(SIZE), adapter=adapter, ledger=shared, batch_size=20, run_state=lambda: "running",
            publish=lambda progress: None, run_id=run_id, progress_interval=1.0,
        ).run()  # fmt: skip


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with ledger_database("concurrent") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
def shared_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any]:
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path))
    return ("postgres", connect_args(request.getfixturevalue("pg_database")))


def test_two_tasks_of_one_slot_at_once_reach_each_recipient_once(shared_ledger: tuple[str, Any]) -> None:
    sink, port = SlowSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    runs = [f"run-{n}-{uuid.uuid4().hex[:6]}" for n in (1, 2)]
    tasks = [context.Process(target=send, args=(run_id, port, shared_ledger, start)) for run_id in runs]
    try:
        for task in tasks:
            task.start()
        start.set()
        for task in tasks:
            task.join(120)
    finally:
        controller.stop()
    assert [task.exitcode for task in tasks] == [0, 0]
    assert len(sink.recipients) == SIZE
    assert max(sink.recipients.values()) == 1, "a recipient got two messages"
    assert all(sink.runs[run_id] > 0 for run_id in runs), f"the two tasks did not overlap: {dict(sink.runs)}"
