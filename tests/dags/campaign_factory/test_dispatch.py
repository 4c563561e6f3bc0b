"""The dispatch loop with a real sink and ledger: progress per batch, skip of reached recipients, stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campaign_factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_factory.dispatch import Dispatcher
from campaign_factory.ledger import DeliveryLedger

from tests.dags.campaign_factory.test_audience import plan


def run(tmp_path: Path, size: int, states: list[str], run_id: str = "run-1") -> tuple[Any, list[dict[str, Any]]]:
    """Dispatch ``size`` SMS in batches of 10 while the run goes through ``states`` (one per batch)."""
    published: list[dict[str, Any]] = []
    remaining = list(states)
    context = DeliveryContext("c", run_id, "sms", {"text": "t", "sender": "S"}, tmp_path, {})
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot", "sms") as ledger:
        result = Dispatcher(
            plan=plan(size),
            adapter=ChannelAdapter.registry["sms"](context, Pacer(0)),
            ledger=ledger,
            batch_size=10,
            run_state=lambda: remaining.pop(0) if remaining else "running",
            publish=published.append,
            run_id=run_id,
        ).run()
    return result, published


def sink_lines(tmp_path: Path) -> int:
    """Lines in the SMS sink."""
    return len((tmp_path / "c" / "sms.jsonl").read_text().splitlines())


def test_progress_once_per_batch_until_total(tmp_path: Path) -> None:
    """Progress is published at start and after each batch, and reaches the total."""
    result, published = run(tmp_path, 35, [])
    assert [p["sent"] for p in published] == [0, 10, 20, 30, 35]
    assert published[-1] == {"channel": "sms", "total": 35, "sent": 35, "failed": 0}
    assert (result.batches, result.stopped) == (4, False)
    assert sink_lines(tmp_path) == 35


def test_stop_between_batches(tmp_path: Path) -> None:
    """When the run is no longer running, nothing more is sent."""
    result, published = run(tmp_path, 100, ["running", "running", "failed"])
    assert (result.sent, result.stopped, result.stop_state) == (20, True, "failed")
    assert published[-1]["sent"] == 20
    assert sink_lines(tmp_path) == 20


def test_restart_sends_only_to_recipients_not_reached(tmp_path: Path) -> None:
    """A second run of the same slot sends only what the first did not."""
    run(tmp_path, 100, ["running", "running", "running", "queued"])
    result, published = run(tmp_path, 100, [], run_id="run-2")
    assert (result.already_reached, result.total, result.sent) == (30, 70, 70)
    assert published[0] == {"channel": "sms", "total": 70, "sent": 0, "failed": 0}
    assert published[-1]["sent"] == 70
    assert sink_lines(tmp_path) == 100
