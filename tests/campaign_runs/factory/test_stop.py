"""The stop check's cadence with a fake clock and a fake run state: no real sleeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campaign_runs.factory.channels import BatchOutcome, ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import LedgerGate
from campaign_runs.factory.ledger import open_ledger
from campaign_runs.factory.stop import StopSignal

from tests.campaign_runs.factory.test_audience import plan


class FakeClock:
    """A monotonic clock that only moves when told to (or when ``sleep`` is called)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock instead of sleeping."""
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRun:
    """A run state that turns ``failed`` at ``stop_at`` on the fake clock; counts the questions asked."""

    def __init__(self, clock: FakeClock, stop_at: float = float("inf")) -> None:
        self.clock = clock
        self.stop_at = stop_at
        self.asked: list[float] = []

    def __call__(self) -> str:
        self.asked.append(self.clock.now)
        return "failed" if self.clock.now >= self.stop_at else "running"


def signal(clock: FakeClock, run: FakeRun) -> StopSignal:
    """A stop signal on the fake clock."""
    return StopSignal(run, interval=0.25, clock=clock, sleep=clock.sleep)


def test_state_asked_at_most_every_quarter_second() -> None:
    """A thousand checks in one second ask the run's state four times, not a thousand."""
    clock = FakeClock()
    run = FakeRun(clock)
    stop = signal(clock, run)
    for _ in range(1000):
        assert not stop.stopped()
        clock.now += 0.001
    assert len(run.asked) == 4
    assert all(b - a >= 0.25 for a, b in zip(run.asked, run.asked[1:], strict=False))


def test_stop_seen_within_one_interval_and_remembered() -> None:
    """A stop at t is seen by the first check due after t, then without asking again."""
    clock = FakeClock()
    run = FakeRun(clock, stop_at=clock.now + 0.6)
    stop = signal(clock, run)
    while not stop.stopped():
        clock.now += 0.01
    assert clock.now - run.stop_at <= 0.25 + 1e-9
    asked = len(run.asked)
    assert stop.stopped() and stop.state == "failed"
    assert len(run.asked) == asked


def test_sleep_in_slices_and_wakes_on_stop() -> None:
    """A 10 s rate-limit wait checks every 0.25 s and ends within 0.25 s of the stop."""
    clock = FakeClock()
    start = clock.now
    run = FakeRun(clock, stop_at=start + 1.1)
    stop = signal(clock, run)
    assert stop.sleep(10.0) is True
    assert max(clock.sleeps) <= 0.25 + 1e-9
    assert run.stop_at <= clock.now <= run.stop_at + 0.25 + 1e-9
    assert [round(t - start, 6) for t in run.asked] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def test_sleep_without_stop_sleeps_the_whole_wait() -> None:
    """With the run running, sleep returns False after exactly the requested time."""
    clock = FakeClock()
    stop = signal(clock, FakeRun(clock))
    start = clock.now
    assert stop.sleep(0.6) is False
    assert abs(clock.now - start - 0.6) < 1e-9
    assert stop.sleep(0) is False


class MemoryAdapter(ChannelAdapter):
    """A channel that keeps messages in memory with their (fake) send times."""

    name = ""

    def __init__(self, clock: FakeClock, rate: float, tmp_path: Path) -> None:
        super().__init__(DeliveryContext("c", "run", "memo", {}, tmp_path, {}), Pacer(rate, clock=clock))
        self.clock = clock
        self.sent: list[tuple[str, float]] = []

    def connection(self) -> Any:
        """No connection needed."""
        from contextlib import nullcontext

        return nullcontext()

    def send_one(self, connection: Any, recipient: Any) -> bool:
        """Record the message and its time; each send takes 5 ms of fake time."""
        self.clock.now += 0.005
        self.sent.append((recipient.id, self.clock.now))
        return True


def test_batch_of_250_at_10_per_second_stops_mid_batch(tmp_path: Path) -> None:
    """A stop during a 250-message batch at 10/s ends it within 0.25 s: at most 3 more messages, ledger exact."""
    clock = FakeClock()
    run = FakeRun(clock, stop_at=clock.now + 3.03)
    adapter = MemoryAdapter(clock, 10, tmp_path)
    outcome = BatchOutcome()
    with open_ledger("c", "slot", "memo", sink_dir=tmp_path) as ledger:
        gate = LedgerGate(ledger, signal(clock, run), "run")
        adapter.send_batch(list(plan(250).recipients()), outcome, gate)
        gate.flush()
        counts = ledger.counts(250)
    assert outcome.stopped
    after = [t for _, t in adapter.sent if t > run.stop_at]
    assert len(after) <= 3
    assert max(t for _, t in adapter.sent) <= run.stop_at + 0.25 + 0.005 + 1e-9
    assert len(outcome.delivered) == len(adapter.sent) == counts.sent
    assert counts.in_doubt == 0
