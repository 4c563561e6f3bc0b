"""Synthetic audiences: deterministic, lazy, slot-aware."""

from __future__ import annotations

import datetime as dt
import sys

from campaign_factory.audience import AudiencePlan, RunSlot, make_recipient, plan_audience, slot_for_run

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
    assert {r.country for r in first} <= {"FR", "DE"}
    assert all(r.attributes == {"opted_in": True} for r in first)
    assert first[3] == make_recipient(plan(), 3)
    assert first[0].email.endswith("@example.com")


def test_rotation_per_slot() -> None:
    """A rotating segment picks different members per slot; a fixed one does not."""
    other = RunSlot("2026-03-02T11:00:00+00:00", None, None, "run-2")
    assert [r.id for r in plan(rotate=True).recipients()] != [r.id for r in plan(rotate=True, slot=other).recipients()]
    assert [r.id for r in plan().recipients()] == [r.id for r in plan(slot=other).recipients()]


def test_batches_are_lazy_for_millions() -> None:
    """A million-recipient plan yields batches without building the whole list."""
    big = plan(2_000_000, population=5_000_000, rotate=True)
    batches = big.batches(1000)
    first = next(batches)
    second = next(batches)
    assert len(first) == len(second) == 1000
    assert second[0].position == 1000
    assert sys.getsizeof(big.to_xcom()) < 1000
    assert AudiencePlan.from_xcom(big.to_xcom()) == big
    assert [len(b) for b in plan(25).batches(10)] == [10, 10, 5]


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
