"""The guard: YAML validation, the threshold arithmetic, and a dispatch that stops at once when it trips."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory import guard
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import Dispatcher
from campaign_runs.factory.guard import ChannelGuard, GuardSpec
from campaign_runs.factory.ledger import SqliteLedger
from campaign_runs.factory.spec import CampaignSpecError, parse_spec
from campaign_runs.factory.stop import StopSignal

from tests.campaign_runs.factory.test_audience import plan
from tests.campaign_runs.factory.test_spec import MINIMAL, broken


def spec_with_guard(value: Any) -> Any:
    """The minimal campaign with ``channels.sms.guard`` set to ``value``, parsed."""
    return parse_spec(broken(channels__sms__guard=value), Path("campaign.yaml"))


def test_yaml_guard_is_kept_in_the_channel_settings() -> None:
    """Either key is optional; the declared thresholds are kept, and a channel without a guard has none."""
    both = spec_with_guard({"max_failed_percent": 5, "max_failing_batches_in_row": 3})
    assert both.channel("sms").settings["guard"] == {"max_failed_percent": 5.0, "max_failing_batches_in_row": 3}
    assert GuardSpec.of(both.channel("sms").settings) == GuardSpec(5.0, 3)
    only_row = spec_with_guard({"max_failing_batches_in_row": 2})
    assert only_row.channel("sms").settings["guard"] == {"max_failing_batches_in_row": 2}
    assert spec_with_guard({"max_failed_percent": 100}).channel("sms").settings["guard"] == {"max_failed_percent": 100}
    plain = parse_spec(MINIMAL, Path("campaign.yaml"))
    assert "guard" not in plain.channel("sms").settings
    assert GuardSpec.of(plain.channel("sms").settings) is None


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"max_failed_percent": 0}, "channels.sms.guard.max_failed_percent", "> 0 and <= 100"),
        ({"max_failed_percent": -3}, "channels.sms.guard.max_failed_percent", "> 0 and <= 100"),
        ({"max_failed_percent": 100.5}, "channels.sms.guard.max_failed_percent", "> 0 and <= 100"),
        ({"max_failed_percent": "5%"}, "channels.sms.guard.max_failed_percent", "'5%'"),
        ({"max_failed_percent": True}, "channels.sms.guard.max_failed_percent", "True"),
        ({"max_failing_batches_in_row": 0}, "channels.sms.guard.max_failing_batches_in_row", "> 0"),
        ({"max_failing_batches_in_row": 2.5}, "channels.sms.guard.max_failing_batches_in_row", "whole number"),
        ({"max_failed_percent": 5, "max_fails": 3}, "channels.sms.guard.max_fails", "unknown field"),
        ({}, "channels.sms.guard", "declares no threshold"),
        (5, "channels.sms.guard", "must be a mapping"),
    ],
)
def test_yaml_guard_errors_name_the_field(value: Any, field: str, message: str) -> None:
    """Numbers > 0, a percent ≤ 100, unknown keys refused: every error names its dotted field."""
    with pytest.raises(CampaignSpecError) as caught:
        spec_with_guard(value)
    assert caught.value.field_name == field
    assert message in caught.value.message


def test_a_batch_over_the_percent_trips_with_the_numbers_in_the_note() -> None:
    """Exactly 5% is not over 5%; 6 of 100 is, and the note names the threshold and the numbers."""
    watch = ChannelGuard("email", GuardSpec(max_failed_percent=5))
    assert watch.observe(delivered=95, failed=5) is None
    trip = watch.observe(delivered=94, failed=6)
    assert trip is not None
    assert trip.note == "Guard: email failed 6 of 100 (6.0%) in the last batch, over 5%"
    assert (trip.rule, trip.batch_failed, trip.batch_attempted, trip.batches, trip.sent, trip.failed) == (
        "max_failed_percent", 6, 100, 2, 189, 11,
    )  # fmt: skip
    assert trip.threshold == {"max_failed_percent": 5.0}
    assert watch.observe(delivered=0, failed=100) is None, "a guard trips once"


def test_failing_batches_in_a_row_trip_and_a_clean_batch_resets_the_count() -> None:
    """Three batches in a row with any failure trip; a batch without failures starts the count again."""
    watch = ChannelGuard("sms", GuardSpec(max_failing_batches_in_row=3))
    outcomes = [(99, 1), (98, 2), (100, 0), (99, 1), (99, 1)]
    assert [watch.observe(delivered, failed) for delivered, failed in outcomes] == [None] * 5
    trip = watch.observe(delivered=97, failed=3)
    assert trip is not None
    assert trip.note == ("Guard: sms had failures in 3 batches in a row (last batch: 3 of 100 failed), the limit is 3")
    assert (trip.rule, trip.failing_batches_in_row, trip.batches) == ("max_failing_batches_in_row", 3, 6)


def test_an_empty_batch_never_trips_the_percent() -> None:
    """A batch whose recipients were all reached elsewhere attempted nothing: no division, no trip."""
    watch = ChannelGuard("sms", GuardSpec(max_failed_percent=1))
    assert watch.observe(delivered=0, failed=0) is None


class RefusingChannel(ChannelAdapter):
    """A channel that refuses every recipient whose position is a multiple of ``every``."""

    name = ""

    def __init__(self, tmp_path: Path, settings: dict[str, Any], every: int) -> None:
        super().__init__(DeliveryContext("c", "run-1", "sms", settings, tmp_path, {}), Pacer(0))
        self.every = every
        self.delivered: list[str] = []
        self.lock = threading.Lock()

    def connection(self) -> Any:
        """No connection."""
        return nullcontext()

    def send_one(self, connection: Any, recipient: Any) -> bool:
        """Refuse one in ``every``."""
        if recipient.position % self.every == 0:
            return False
        with self.lock:
            self.delivered.append(recipient.id)
        return True


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The guard's XComs, kept instead of pushed; the hold is short."""
    values: list[dict[str, Any]] = []
    monkeypatch.setattr(guard, "hooks", guard.Hooks(push=values.append, hold_seconds=5.0))
    yield values


def dispatch(
    tmp_path: Path, adapter: RefusingChannel, state: Callable[[], str], *, size: int = 100, connections: int = 1
) -> Any:
    """Dispatch ``size`` recipients in batches of 10 over ``connections``."""
    ledger = SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", "sms")
    try:
        return Dispatcher(
            plan=plan(size),
            adapter=adapter,
            ledger=ledger,
            batch_size=10,
            run_state=state,
            publish=lambda progress: None,
            run_id="run-1",
            stop=StopSignal(state, interval=0),
            connections=connections,
        ).run()
    finally:
        ledger.close()


@pytest.mark.parametrize("connections", [1, 3])
def test_a_tripped_guard_stops_sending_at_once_and_waits_for_the_plugins_stop(
    tmp_path: Path, pushed: list[dict[str, Any]], connections: int
) -> None:
    """20% of the first batch fails (over 10%): no other message leaves; the XCom is pushed; the Stop ends it."""
    adapter = RefusingChannel(tmp_path, {"guard": {"max_failed_percent": 10}}, every=5)
    result = dispatch(tmp_path, adapter, lambda: "failed" if pushed else "running", connections=connections)
    assert (result.stopped, result.stop_state) == (True, "failed")
    [value] = pushed
    assert value["note"] == "Guard: sms failed 2 of 10 (20.0%) in the last batch, over 10%"
    assert (value["channel"], value["batch_failed"], value["batch_attempted"]) == ("sms", 2, 10)
    # Each sender stops before its next message once one batch tripped: at most one batch per connection.
    assert 8 <= len(adapter.delivered) <= 8 * connections
    assert result.sent == len(adapter.delivered)


def test_a_channel_under_its_guard_sends_everyone(tmp_path: Path, pushed: list[dict[str, Any]]) -> None:
    """10% refused with a 10% threshold: never over it, everything goes out, nothing is pushed."""
    adapter = RefusingChannel(tmp_path, {"guard": {"max_failed_percent": 10}}, every=10)
    result = dispatch(tmp_path, adapter, lambda: "running")
    assert (result.stopped, result.sent, result.failed, pushed) == (False, 90, 10, [])


def test_no_stop_within_the_hold_fails_the_task_with_the_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a housekeeper to stop the run, the task fails (no retry) naming the guard, after the hold."""
    from airflow.sdk.exceptions import AirflowFailException

    values: list[dict[str, Any]] = []
    monkeypatch.setattr(guard, "hooks", guard.Hooks(push=values.append, hold_seconds=0.3))
    adapter = RefusingChannel(tmp_path, {"guard": {"max_failing_batches_in_row": 2}}, every=7)
    with pytest.raises(AirflowFailException, match="Guard: sms had failures in 2 batches in a row"):
        dispatch(tmp_path, adapter, lambda: "running")
    assert [value["rule"] for value in values] == ["max_failing_batches_in_row"]
    assert len(adapter.delivered) < 100 - 100 // 7
