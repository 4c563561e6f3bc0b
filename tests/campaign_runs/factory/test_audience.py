"""Synthetic audiences: deterministic, lazy, slot-aware."""

from __future__ import annotations

import datetime as dt
import gc
import json
import tracemalloc
from collections.abc import Iterable
from itertools import islice

import pytest
from campaign_runs.factory.audience import AudiencePlan, RunSlot, make_recipient, plan_audience, slot_for_run

SLOT = RunSlot("2026-03-02T10:00:00+00:00", None, None, "run-1")


def plan(size: int = 10, *, rotate: bool = False, slot: RunSlot = SLOT, population: int = 1000) -> AudiencePlan:
    """A small audience plan."""
    return plan_audience(
        campaign="c",
        segment="seg",
        criteria={"countries": ["FR", "DE"], "opted_in": True},
        size=size,
        population=population,
        rotate_per_slot=rotate,
        slot=slot,
        restart_of=None,
    )


def test_recipients_are_deterministic_and_follow_criteria() -> None:
    """Same plan, same recipients; attributes come from the segment criteria."""
    first = list(plan().recipients())
    assert first == list(plan().recipients())
    assert len(first) == 10
    assert len({r.id for r in first}) == 10
    assert {r.values["country"] for r in first} <= {"FR", "DE"}
    assert all(r.values["opted_in"] is True for r in first)
    assert first[3] == make_recipient(plan(), 3)
    assert first[0].email.endswith("@example.com")


def test_rotation_per_slot() -> None:
    """A rotating segment picks different members per slot; a fixed one does not."""
    other = RunSlot("2026-03-02T11:00:00+00:00", None, None, "run-2")
    assert [r.id for r in plan(rotate=True).recipients()] != [r.id for r in plan(rotate=True, slot=other).recipients()]
    assert [r.id for r in plan().recipients()] == [r.id for r in plan(slot=other).recipients()]


def peak_bytes_while_consuming(iterable: Iterable[object]) -> tuple[int, int]:
    """Items consumed and the peak of memory allocated meanwhile (tracemalloc), items dropped one by one."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = 0
        for item in iterable:
            count += len(item) if isinstance(item, list) else 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["recipients", "batches"])
def test_memory_stays_flat_when_the_audience_grows_tenfold(mode: str) -> None:
    """Going through an audience ten times larger allocates no more at a time: recipients are never all held."""
    small_plan = plan(4_000, population=5_000_000, rotate=True)
    large_plan = plan(40_000, population=5_000_000, rotate=True)
    if mode == "recipients":
        small_count, small_peak = peak_bytes_while_consuming(small_plan.recipients())
        large_count, large_peak = peak_bytes_while_consuming(large_plan.recipients())
    else:
        small_count, small_peak = peak_bytes_while_consuming(small_plan.batches(500))
        large_count, large_peak = peak_bytes_while_consuming(large_plan.batches(500))
    assert (small_count, large_count) == (4_000, 40_000)
    print(f"{mode}: peak {small_peak} bytes for 4,000 recipients, {large_peak} for 40,000")
    # Holding every recipient would take about ten times the smaller run's peak; allow only noise.
    assert large_peak <= 2 * small_peak + 64 * 1024, (small_peak, large_peak)


def test_batches_are_lazy_for_millions() -> None:
    """A million-recipient plan yields batches without building the whole list."""
    big = plan(2_000_000, population=5_000_000, rotate=True)
    count, peak = peak_bytes_while_consuming(islice(big.batches(1000), 2))
    assert count == 2000
    assert peak < 8 * 1024 * 1024, peak  # two batches of 1,000, not two million recipients
    batches = big.batches(1000)
    first = next(batches)
    second = next(batches)
    assert len(first) == len(second) == 1000
    assert [r.position for r in first + second] == list(range(2000))
    assert second[0] == make_recipient(big, 1000)
    assert [len(b) for b in plan(25).batches(10)] == [10, 10, 5]


def test_xcom_form_is_a_small_recipe_not_the_recipients() -> None:
    """What goes to XCom is JSON of a few fields, the same length for 10 or 2,000,000 recipients."""
    big = plan(2_000_000, population=5_000_000, rotate=True)
    small = plan(10, population=5_000_000, rotate=True)
    data = big.to_xcom()
    assert set(data) == {
        "campaign",
        "segment",
        "criteria",
        "size",
        "population",
        "offset",
        "slot",
        "restart_of",
        "slot_key",
    }
    assert data["size"] == 2_000_000 and data["slot_key"] == SLOT.key
    encoded = json.dumps(data)
    assert len(encoded) < 1000
    # Only the digits of the size differ.
    assert len(encoded) - len(json.dumps(small.to_xcom())) == len("2000000") - len("10")
    assert AudiencePlan.from_xcom(json.loads(encoded)) == big


def test_slot_for_restart_uses_original_slot() -> None:
    """A restart run's slot is the one in its conf, keyed like the original run."""
    original, restart_of = slot_for_run(
        run_id="scheduled__1",
        conf={},
        logical_date=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
        data_interval_start=None,
        data_interval_end=None,
    )
    assert restart_of is None
    restarted, restart_of = slot_for_run(
        run_id="manual__2",
        conf={
            "campaign_restart_of": "scheduled__1",
            "campaign_slot": {
                "logical_date": "2026-03-02T10:00:00Z",
                "data_interval_start": None,
                "data_interval_end": None,
            },
        },
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
    )
    assert restart_of == "scheduled__1"
    assert restarted.key == original.key == "logical:2026-03-02T10:00:00+00:00"


def test_slot_without_dates_is_keyed_by_original_run() -> None:
    """A manual run without logical date is its own slot; its restart targets that slot."""
    manual, _ = slot_for_run(
        run_id="m1", conf=None, logical_date=None, data_interval_start=None, data_interval_end=None
    )
    restart, _ = slot_for_run(
        run_id="m2",
        conf={"campaign_restart_of": "m1", "campaign_slot": {"logical_date": None}},
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
    )
    assert manual.key == restart.key == "run:m1"
