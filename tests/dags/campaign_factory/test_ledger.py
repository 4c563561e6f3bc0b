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


def test_claim_then_confirm_or_release(tmp_path: Path) -> None:
    """A claim writes a committed pending row; the next claim confirms or releases the previous one atomically."""
    a, b, c = list(plan(3).recipients())
    with DeliveryLedger.for_campaign(tmp_path, "c", "s", "email") as ledger:
        assert ledger.claim(a, "run-1")
        with DeliveryLedger.for_campaign(tmp_path, "c", "s", "email") as other_process:
            assert other_process.in_doubt() == [a.id]
            assert not other_process.claim(a, "run-2"), "a pending recipient is nobody else's to send"
        assert ledger.claim(b, "run-1", confirm=[a.id])
        assert ledger.claim(c, "run-1", release=[b.id])
        assert (ledger.counts(3).sent, ledger.counts(3).in_doubt) == (1, 1)
        assert ledger.in_doubt() == [c.id]
        assert ledger.already_reached([a.id, b.id, c.id]) == {a.id, c.id}
        ledger.settle(confirm=[c.id])
        assert (ledger.counts(3).sent, ledger.counts(3).in_doubt) == (2, 0)
        assert ledger.runs() == {"run-1": 2}
        ledger.settle(release=[a.id])
        assert ledger.counts(3).sent == 2, "release touches pending rows only"


def test_ledger_written_before_pending_rows_still_reads(tmp_path: Path) -> None:
    """A ledger file without the status column gains it; its rows count as sent."""
    import sqlite3

    path = tmp_path / "c" / "ledger.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE deliveries (campaign TEXT NOT NULL, slot TEXT NOT NULL, channel TEXT NOT NULL, "
            "recipient TEXT NOT NULL, position INTEGER NOT NULL, run_id TEXT NOT NULL, sent_at TEXT NOT NULL, "
            "PRIMARY KEY (campaign, slot, channel, recipient))"
        )
        old.execute("INSERT INTO deliveries VALUES ('c', 's', 'sms', 'seg-1', 0, 'old', 'now')")
    old.close()
    with DeliveryLedger.for_campaign(tmp_path, "c", "s", "sms") as ledger:
        assert (ledger.counts(10).sent, ledger.counts(10).in_doubt) == (1, 0)
