"""The delivery ledger: per (campaign, slot, channel, recipient), shared by concurrent writers."""

from __future__ import annotations

from pathlib import Path

from campaign_factory.ledger import DeliveryLedger

from tests.dags.campaign_factory.test_audience import plan


def test_record_and_lookup(tmp_path: Path) -> None:
    """Recorded recipients are found again; duplicates are ignored; other slots and channels are separate."""
    recipients = list(plan(20).recipients())
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot-a", "email") as ledger:
        assert ledger.record(recipients[:8], "run-1") == 8
        assert ledger.record(recipients[5:10], "run-2") == 2
        assert ledger.reached_count(20) == 10
        assert ledger.reached_count(6) == 6
        assert ledger.already_reached([r.id for r in recipients]) == {r.id for r in recipients[:10]}
        assert ledger.runs() == {"run-1": 8, "run-2": 2}
    assert (tmp_path / "c" / "ledger.sqlite").is_file()
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot-b", "email") as other_slot:
        assert other_slot.reached_count(20) == 0
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot-a", "sms") as other_channel:
        assert other_channel.already_reached([r.id for r in recipients]) == set()


def test_lookup_in_chunks(tmp_path: Path) -> None:
    """Lookups of more ids than one SQL statement holds still answer exactly."""
    recipients = list(plan(1500, population=5000).recipients())
    with DeliveryLedger.for_campaign(tmp_path, "c", "s", "push") as ledger:
        ledger.record(recipients[::3], "run")
        assert len(ledger.already_reached([r.id for r in recipients])) == 500
