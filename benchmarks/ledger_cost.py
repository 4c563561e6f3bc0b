"""What the per-recipient ledger costs: the email channel's sending code with and without it, same server, same run.

Each variant runs in a child process of its own (as a channel task does; the SMTP server lives in the benchmark's
process) on one connection, on the campaign factory's own classes:

- ``no ledger``: the same ``Dispatcher`` with ``NullLedger``, whose claims always win and write nothing;
- ``SQLite ledger``: the ``Dispatcher`` with the per-campaign SQLite file, as ``make run`` and the tests use;
- ``PostgreSQL ledger``: the ``Dispatcher`` with the shared PostgreSQL table a multi-host deployment uses.

Used by ``benchmarks.throughput``; the PostgreSQL variant is left out when no server answers.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
POSTGRES = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
VARIANTS = ("no ledger", "SQLite ledger", "PostgreSQL ledger")


def postgres_available() -> bool:
    """Whether the PostgreSQL server of ``POSTGRES`` accepts a connection."""
    import psycopg2

    try:
        psycopg2.connect(connect_timeout=3, **POSTGRES).close()
    except psycopg2.OperationalError:
        return False
    return True


def send(variant: str, port: int, run_id: str, size: int, batch_size: int, subject: str, body: str) -> None:
    """Send ``size`` emails of the benchmark campaign as ``variant`` says (a child process)."""
    sys.path[:0] = [str(REPO)]
    from campaign_runs.factory.audience import RunSlot, plan_audience
    from campaign_runs.factory.channels import DeliveryContext, EmailAdapter, Pacer, SmtpSettings
    from campaign_runs.factory.dispatch import Dispatcher
    from campaign_runs.factory.ledger import DeliveryLedger, PostgresLedger, SqliteLedger

    slot = RunSlot(logical_date=None, data_interval_start=None, data_interval_end=None, run_id=run_id)
    plan = plan_audience(
        campaign="bench_email", segment="bench_bench_email", criteria={}, size=size, population=1_000_000,
        rotate_per_slot=False, slot=slot, restart_of=None,
    )  # fmt: skip
    smtp = SmtpSettings("127.0.0.1", port, starttls=False, ssl=False, timeout=60, mail_from="campaigns@example.com")
    settings = {"subject": subject, "body": body, "from_name": "", "reply_to": ""}
    context = DeliveryContext("bench_email", run_id, "email", settings, Path(tempfile.gettempdir()), {})
    adapter = EmailAdapter(context, Pacer(0), smtp)
    if variant == "no ledger":
        from benchmarks.null_ledger import NullLedger

        _dispatch(Dispatcher, plan, adapter, NullLedger("bench_email", slot.key, "email"), batch_size, run_id)
        return
    ledger: DeliveryLedger
    if variant == "SQLite ledger":
        with tempfile.TemporaryDirectory(prefix="campaign-ledger-bench-") as folder:
            ledger = SqliteLedger(Path(folder) / "ledger.sqlite", "bench_email", slot.key, "email")
            _dispatch(Dispatcher, plan, adapter, ledger, batch_size, run_id)
        return
    try:
        _dispatch(
            Dispatcher, plan, adapter, PostgresLedger(POSTGRES, "bench_email", slot.key, "email"), batch_size, run_id
        )
    finally:
        with PostgresLedger(POSTGRES, "bench_email", slot.key, "email") as cleanup:
            cleanup.connection.cursor().execute(
                "DELETE FROM campaign_delivery_ledger WHERE campaign=%s AND slot=%s", ("bench_email", slot.key)
            )


def _dispatch(dispatcher: Any, plan: Any, adapter: Any, ledger: Any, batch_size: int, run_id: str) -> None:
    """One dispatch as a channel task does it (threaded stop checks), into ``ledger``; closes it."""
    with ledger:
        dispatcher(
            plan=plan, adapter=adapter, ledger=ledger, batch_size=batch_size, run_state=lambda: "running",
            publish=lambda progress: None, run_id=run_id, progress_interval=1.0, background_checks=True,
        ).run()  # fmt: skip


def run_variant(variant: str, port: int, size: int, batch_size: int, subject: str, body: str) -> str:
    """Run one variant in a spawned child process; the run id its messages carry."""
    run_id = f"ledger_{variant.split()[0].lower()}_{size}_{time.time_ns()}"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=send, args=(variant, port, run_id, size, batch_size, subject, body))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"{variant}: the sender exited with {child.exitcode}")
    return run_id
