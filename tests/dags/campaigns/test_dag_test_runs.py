"""Campaign runs for real through ``dag.test()`` with a real SMTP server: counts, progress, sinks, restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.dags.campaigns.runs import Stopper, run_messages, sink_records, subject, xcoms
from tests.dags.conftest import CAMPAIGNS


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
        }
    assert values[("send_email", "return_value")]["batches"] == 5
    summary = values[("summarise", "return_value")]
    assert summary["complete"] is True
    assert summary["channels"]["sms"]["sent"] == 120
    plan = values[("build_audience", "return_value")]
    assert plan["slot_key"] == "logical:2026-03-02T10:00:00+00:00"
    assert plan["size"] == 120


@pytest.mark.slow
def test_restart_after_stop_sends_only_to_recipients_not_reached(smtp_server: Any, sink_dir: Path) -> None:
    """A run stopped mid-dispatch, then restarted with the original slot: every recipient reached exactly once."""
    dag = campaign("weekly_newsletter")
    size, batch = 300, 20
    conf = {"audience_size": size, "email_batch_size": batch, "email_rate_limit_per_second": 150}
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
        "skipped": {},
    }
    assert values[("send_email", "return_value")]["already_reached"] == reached
    assert values[("build_audience", "return_value")]["restart_of"] == first.run_id
    pushes = sink_records(sink_dir, "weekly_newsletter", "push")
    assert len(pushes) == size
    assert len({p["recipient"] for p in pushes}) == size
