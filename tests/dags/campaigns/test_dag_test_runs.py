"""Campaign runs for real through ``dag.test()`` with a real SMTP server: counts, progress, sinks, restart.

cart_abandonment's audience is the demo generator (its size is a param); weekly_newsletter reads the seeded
``subscribers`` table through Connection ``subscribers_db`` (tests/dags/conftest.py) and flash_sale the CSV beside
it, so their counts come from that data (scripts/seed_subscribers.py describes its rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.dags.campaigns.runs import Stopper, run_messages, sink_records, subject, xcoms
from tests.dags.conftest import CAMPAIGNS, FLASH_SALE_CSV, csv_rows

# The seeded subscribers (3,000 rows): every 20th opted out (150), every 3rd has no push token (1,000), row 2998
# repeats row 1's address in other letter case, row 2999's address has no "@".
NEWSLETTER_EMAIL_SKIPPED = {"no_consent": 150, "duplicate": 1, "invalid_address": 1}
NEWSLETTER_EMAILS = 3000 - 150 - 2
NEWSLETTER_PUSH_SKIPPED = {"no_address": 1000, "no_consent": 100}  # opted out with a token: 150 - 50
NEWSLETTER_PUSHES = 3000 - 1000 - 100
FLASH_SALE_ROWS = csv_rows(FLASH_SALE_CSV)  # every row valid on every channel


def campaign(name: str) -> Any:
    """The DAG built by a campaign's loader."""
    from campaign_runs.factory.factory import campaign_dag

    return campaign_dag(str(CAMPAIGNS / f"{name}.py"))


def test_cart_abandonment_run_sends_every_channel(smtp_server: Any, sink_dir: Path) -> None:
    """120 recipients: 120 emails in 5 batches, 120 SMS and 120 push lines, progress at total."""
    dag = campaign("cart_abandonment")
    conf = {
        "audience_size": 120,
        "email_batch_size": 25,
        "sms_batch_size": 50,
        "sms_rate_limit_per_second": 0,
        "push_batch_size": 40,
    }
    run = dag.test(logical_date=pendulum.datetime(2026, 3, 2, 10, tz="UTC"), run_conf=conf)

    assert run.state == "success"
    emails = run_messages(smtp_server.messages, run.run_id)
    assert len(emails) == 120
    assert len(smtp_server.messages) == 120
    assert len({m["To"] for m in emails}) == 120
    assert all(subject(m).endswith(", you left something in your cart") for m in emails)
    assert len(sink_records(sink_dir, "cart_abandonment", "sms")) == 120
    assert len(sink_records(sink_dir, "cart_abandonment", "push")) == 120
    values = xcoms("cart_abandonment", run.run_id)
    for channel in ("email", "sms", "push"):
        assert values[(f"send_{channel}", "campaign_progress")] == {
            "channel": channel,
            "total": 120,
            "sent": 120,
            "failed": 0,
            "in_doubt": 0,
            "suppressed": 0,
            "skipped": {},
            "retried": 0,
            "reasons": {},
        }
    assert values[("send_email", "return_value")]["batches"] == 5
    summary = values[("summarise", "return_value")]
    assert summary["complete"] is True
    assert summary["channels"]["sms"]["sent"] == 120
    plan = values[("build_audience", "return_value")]
    assert plan["slot_key"] == "logical:2026-03-02T10:00:00+00:00"
    assert plan["size"] == 120


def test_weekly_newsletter_sends_to_the_subscribers_table(smtp_server: Any, sink_dir: Path) -> None:
    """The SQL audience of the shipped newsletter: every clean, consenting subscriber once; the others counted."""
    dag = campaign("weekly_newsletter")
    run = dag.test(logical_date=pendulum.datetime(2026, 3, 9, 8, tz="UTC"))

    assert run.state == "success"
    emails = run_messages(smtp_server.messages, run.run_id)
    assert len(emails) == len({m["To"] for m in emails}) == NEWSLETTER_EMAILS
    assert str(emails[0]["To"]) == "alice.1@example.com"
    assert subject(emails[0]) == "Your week at Example, Alice"
    assert {"Alice.1@Example.com", "sami.2999.example.com", "tess.20@example.com"}.isdisjoint(
        str(m["To"]) for m in emails
    )
    values = xcoms("weekly_newsletter", run.run_id)
    email, push = values[("send_email", "campaign_progress")], values[("send_push", "campaign_progress")]
    assert (email["total"], email["sent"], email["skipped"]) == (
        NEWSLETTER_EMAILS,
        NEWSLETTER_EMAILS,
        NEWSLETTER_EMAIL_SKIPPED,
    )
    assert (push["total"], push["sent"], push["skipped"]) == (
        NEWSLETTER_PUSHES,
        NEWSLETTER_PUSHES,
        NEWSLETTER_PUSH_SKIPPED,
    )
    assert len(sink_records(sink_dir, "weekly_newsletter", "push")) == NEWSLETTER_PUSHES
    plan = values[("build_audience", "return_value")]
    assert (plan["source"], plan["size"]) == ("sql", 3000)
    assert plan["label"] == "SQL query on Connection subscribers_db"


def test_weekly_newsletter_reads_only_who_had_joined_by_the_slot(smtp_server: Any, sink_dir: Path) -> None:
    """``:logical_date`` is bound to the slot: an earlier slot reads only the subscribers who had joined by then."""
    import sqlite3

    from tests.support.subscribers import subscribers_database

    logical = pendulum.datetime(2025, 3, 10, 8, tz="UTC")  # a Monday 09:00 in Paris, after the start date
    with sqlite3.connect(subscribers_database()) as db:
        (joined,) = db.execute("SELECT COUNT(*) FROM subscribers WHERE joined <= ?", (logical.isoformat(),)).fetchone()
    assert 0 < joined < 3000
    run = campaign("weekly_newsletter").test(logical_date=logical)
    assert run.state == "success"
    assert xcoms("weekly_newsletter", run.run_id)[("build_audience", "return_value")]["size"] == joined


def test_flash_sale_sends_to_the_csv_beside_it(smtp_server: Any, sink_dir: Path) -> None:
    """The shipped flash sale reads data/flash_sale.csv: one email, SMS and push per row, phone numbers as given."""
    run = campaign("flash_sale").test(run_conf={"sms_rate_limit_per_second": 0})

    assert run.state == "success"
    emails = run_messages(smtp_server.messages, run.run_id)
    assert len({m["To"] for m in emails}) == len(emails) == FLASH_SALE_ROWS
    sms = sink_records(sink_dir, "flash_sale", "sms")
    assert len({r["recipient"] for r in sms}) == len(sms) == FLASH_SALE_ROWS
    assert sms[0]["recipient"] == "c-0001"
    assert sms[0]["to"] == "+33600007919"
    values = xcoms("flash_sale", run.run_id)
    for channel in ("email", "sms", "push"):
        progress = values[(f"send_{channel}", "campaign_progress")]
        assert (progress["total"], progress["sent"], progress["skipped"]) == (FLASH_SALE_ROWS, FLASH_SALE_ROWS, {})
    assert values[("build_audience", "return_value")]["label"].startswith("CSV file file://")


@pytest.mark.slow
def test_restart_after_stop_sends_only_to_recipients_not_reached(smtp_server: Any, sink_dir: Path) -> None:
    """A run stopped mid-dispatch, then restarted with the original slot: every recipient reached exactly once."""
    dag = campaign("weekly_newsletter")
    size, batch = NEWSLETTER_EMAILS, 20
    conf = {"email_batch_size": batch, "email_rate_limit_per_second": 500}
    stopper = Stopper(
        "weekly_newsletter", ready=lambda: len(smtp_server.messages) >= 60, sent=lambda: len(smtp_server.messages)
    )
    stopper.start()
    logical = pendulum.datetime(2026, 3, 9, 8, tz="UTC")
    first = dag.test(logical_date=logical, run_conf=conf)
    stopper.join(timeout=60)
    assert stopper.error is None, stopper.error
    first_emails = run_messages(smtp_server.messages, first.run_id)
    reached = len(first_emails)
    assert 60 <= reached < size
    assert xcoms("weekly_newsletter", first.run_id)[("send_email", "campaign_progress")]["sent"] == reached

    restart_conf = {
        **conf,
        "campaign_restart_of": first.run_id,
        "campaign_slot": {
            "logical_date": logical.isoformat(),
            "data_interval_start": logical.isoformat(),
            "data_interval_end": logical.isoformat(),
        },
    }
    second = dag.test(logical_date=None, run_conf=restart_conf)

    second_emails = run_messages(smtp_server.messages, second.run_id)
    assert len(second_emails) == size - reached
    first_to = {m["To"] for m in first_emails}
    second_to = {m["To"] for m in second_emails}
    assert not first_to & second_to
    assert len(first_to | second_to) == size
    values = xcoms("weekly_newsletter", second.run_id)
    assert values[("send_email", "campaign_progress")] == {
        "channel": "email",
        "total": size - reached,
        "sent": size - reached,
        "failed": 0,
        "in_doubt": 0,
        "suppressed": 0,
        "skipped": NEWSLETTER_EMAIL_SKIPPED,  # the same snapshot: the same people skipped, for the same reasons
        "retried": 0,
        "reasons": {},
    }
    assert values[("send_email", "return_value")]["already_reached"] == reached
    assert values[("build_audience", "return_value")]["restart_of"] == first.run_id
    assert values[("build_audience", "return_value")]["snapshot"]["reused"] is True
    pushes = sink_records(sink_dir, "weekly_newsletter", "push")
    assert len(pushes) == NEWSLETTER_PUSHES
    assert len({p["recipient"] for p in pushes}) == NEWSLETTER_PUSHES
