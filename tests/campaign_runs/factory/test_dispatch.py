"""The dispatch loop with a real sink and ledger: progress, stop mid-batch, restart, and crashes at every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import Dispatcher
from campaign_runs.factory.ledger import DeliveryLedger, SqliteLedger
from campaign_runs.factory.stop import StopSignal

from tests.campaign_runs.factory.test_audience import plan

NOTHING_HELD_BACK = {"suppressed": 0, "skipped": {}, "retried": 0, "reasons": {}}  # nothing held back or retried


def sink_ids(tmp_path: Path) -> list[str]:
    """Recipients in the SMS sink, in order."""
    import json

    path = tmp_path / "c" / "sms.jsonl"
    return [json.loads(line)["recipient"] for line in path.read_text().splitlines()] if path.exists() else []


def run(
    tmp_path: Path,
    size: int,
    state: Callable[[], str] = lambda: "running",
    run_id: str = "run-1",
    adapter: ChannelAdapter | None = None,
    ledger_class: type[SqliteLedger] = SqliteLedger,
    resend: bool = False,
) -> tuple[Any, list[dict[str, Any]]]:
    """Dispatch ``size`` SMS in batches of 10, asking ``state`` before every message (check interval 0)."""
    published: list[dict[str, Any]] = []
    context = DeliveryContext("c", run_id, "sms", {"text": "t", "sender": "S"}, tmp_path, {})
    ledger = ledger_class(tmp_path / "c" / "ledger.sqlite", "c", "slot", "sms")
    try:
        result = Dispatcher(
            plan=plan(size),
            adapter=adapter or ChannelAdapter.registry["sms"](context, Pacer(0)),
            ledger=ledger,
            batch_size=10,
            run_state=state,
            publish=published.append,
            run_id=run_id,
            stop=StopSignal(state, interval=0),
            resend_in_doubt=resend,
        ).run()
    finally:
        ledger.close()
    return result, published


def local_ledger(tmp_path: Path) -> DeliveryLedger:
    """The SQLite ledger the dispatches of these tests write."""
    return SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", "sms")


def stop_after(tmp_path: Path, count: int) -> Callable[[], str]:
    """A run state that turns ``failed`` once ``count`` messages are in the sink."""
    return lambda: "failed" if len(sink_ids(tmp_path)) >= count else "running"


def test_progress_once_per_batch_until_total(tmp_path: Path) -> None:
    """Progress is published at start and after each batch, and reaches the total."""
    result, published = run(tmp_path, 35)
    assert [p["sent"] for p in published] == [0, 10, 20, 30, 35]
    assert published[-1] == {
        "channel": "sms",
        "total": 35,
        "sent": 35,
        "failed": 0,
        "in_doubt": 0,
        "suppressed": 0,
        "skipped": {},
        "retried": 0,
        "reasons": {},
    }
    assert (result.batches, result.stopped, result.in_doubt) == (4, False, 0)
    assert len(sink_ids(tmp_path)) == 35


def test_stop_between_messages_of_a_batch(tmp_path: Path) -> None:
    """When the run is no longer running, the batch ends before the next message; everything sent is confirmed."""
    result, published = run(tmp_path, 100, stop_after(tmp_path, 23))
    assert (result.sent, result.stopped, result.stop_state, result.in_doubt) == (23, True, "failed", 0)
    assert published[-1]["sent"] == 23
    assert len(sink_ids(tmp_path)) == 23
    with local_ledger(tmp_path) as ledger:
        assert (ledger.counts(100).sent, ledger.counts(100).in_doubt) == (23, 0)


def test_restart_sends_only_to_recipients_not_reached(tmp_path: Path) -> None:
    """A second run of the same slot sends only what the first did not; nobody twice."""
    run(tmp_path, 100, stop_after(tmp_path, 37))
    result, published = run(tmp_path, 100, run_id="run-2")
    assert (result.already_reached, result.total, result.sent, result.in_doubt) == (37, 63, 63, 0)
    assert published[0] == {
        "channel": "sms",
        "total": 63,
        "sent": 0,
        "failed": 0,
        "in_doubt": 0,
        "suppressed": 0,
        "skipped": {},
        "retried": 0,
        "reasons": {},
    }
    assert published[-1]["sent"] == 63
    ids = sink_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 100


class Crash(BaseException):
    """Stands for SIGKILL: raised at one step, then every later ledger write fails too (no cleanup runs)."""


class Steps:
    """Counts the steps of a dispatch (ledger writes and sends) and crashes at step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0
        self.dead = False

    def step(self) -> None:
        """One step; the crash step and every step after it raise ``Crash``."""
        self.count += 1
        if self.dead or self.count == self.at:
            self.dead = True
            raise Crash


def crashing_ledger(steps: Steps) -> type[SqliteLedger]:
    """A ledger class whose writes go through ``steps``; a write at or after the crash commits nothing."""

    class CrashingLedger(SqliteLedger):
        def claim(self, *args: Any, **kwargs: Any) -> bool:
            steps.step()
            return super().claim(*args, **kwargs)

        def reclaim(self, *args: Any, **kwargs: Any) -> bool:
            steps.step()
            return super().reclaim(*args, **kwargs)

        def settle(self, *args: Any, **kwargs: Any) -> None:
            steps.step()
            super().settle(*args, **kwargs)

    return CrashingLedger


class MemoryChannel(ChannelAdapter):
    """A channel keeping what was handed to it; each send is a step that may crash before or after it leaves."""

    name = ""

    def __init__(self, tmp_path: Path, delivered: list[str], steps: Steps | None, refuse: set[str]) -> None:
        super().__init__(DeliveryContext("c", "run", "sms", {}, tmp_path, {}), Pacer(0))
        self.delivered = delivered
        self.steps = steps
        self.refuse = refuse

    def connection(self) -> Any:
        """No connection."""
        return nullcontext()

    def send_one(self, connection: Any, recipient: Any) -> bool:
        """Deliver (a crash step may hit right after the message left)."""
        if recipient.id in self.refuse:
            return False
        self.delivered.append(recipient.id)
        if self.steps is not None:
            self.steps.step()
        return True


class OverlappingMemoryChannel(MemoryChannel):
    """``MemoryChannel`` whose claims run on the gate's claim thread while it prepares, as the email channel's do."""

    overlap_claim = True

    def prepare(self, connection: Any, recipient: Any) -> None:
        """Take a little time, as an SMTP exchange does, so the claim thread really runs beside it."""
        time.sleep(0.0005)


@pytest.mark.parametrize("overlap", [False, True], ids=["claim-inline", "claim-overlapped"])
@pytest.mark.parametrize("crash_at", range(1, 53))
def test_crash_at_any_step_leaves_at_most_one_in_doubt_and_no_duplicate(
    tmp_path: Path, crash_at: int, overlap: bool
) -> None:
    """Killed at any point: ≤ 1 recipient in doubt, nothing sent is unrecorded, and a restart sends nobody twice."""
    size = 25
    everyone = [r.id for r in plan(size).recipients()]
    refused = {everyone[4]}
    delivered: list[str] = []
    steps = Steps(crash_at)
    channel = OverlappingMemoryChannel if overlap else MemoryChannel
    with pytest.raises(Crash):
        run(
            tmp_path,
            size,
            adapter=channel(tmp_path, delivered, steps, refused),
            ledger_class=crashing_ledger(steps),
        )
    with local_ledger(tmp_path) as ledger:
        in_doubt = set(ledger.in_doubt())
        sent = set(ledger.already_reached(everyone)) - in_doubt
    assert len(in_doubt) <= 1
    assert sent <= set(delivered)
    assert set(delivered) <= sent | in_doubt

    result, published = run(tmp_path, size, run_id="run-2", adapter=MemoryChannel(tmp_path, delivered, None, refused))
    assert len(delivered) == len(set(delivered)), "a recipient was sent twice"
    assert set(delivered) | in_doubt | refused == set(everyone)
    assert result.in_doubt == published[-1]["in_doubt"] == len(in_doubt)
    assert result.total == size - len(sent) - len(in_doubt)
    assert result.failed == (0 if everyone[4] in sent | in_doubt else 1)


def test_send_error_counts_the_message_in_doubt(tmp_path: Path) -> None:
    """A send that raises (outcome unknown) stays in doubt; progress says so and a restart skips it."""

    class Broken(MemoryChannel):
        def send_one(self, connection: Any, recipient: Any) -> bool:
            if len(self.delivered) == 12:
                raise ConnectionResetError("relay went away")
            return super().send_one(connection, recipient)

    delivered: list[str] = []
    published: list[dict[str, Any]] = []
    with local_ledger(tmp_path) as ledger, pytest.raises(ConnectionResetError):
        Dispatcher(
            plan=plan(30),
            adapter=Broken(tmp_path, delivered, None, set()),
            ledger=ledger,
            batch_size=10,
            run_state=lambda: "running",
            publish=published.append,
            run_id="run-1",
        ).run()
    assert published[-1] == {
        "channel": "sms",
        "total": 30,
        "sent": 12,
        "failed": 0,
        "in_doubt": 1,
        "suppressed": 0,
        "skipped": {},
        "retried": 0,
        "reasons": {},
    }
    result, _ = run(tmp_path, 30, run_id="run-2", adapter=MemoryChannel(tmp_path, delivered, None, set()))
    assert (result.already_reached, result.in_doubt, result.sent) == (12, 1, 17)
    assert len(delivered) == len(set(delivered)) == 29


def test_a_prepare_that_raises_gives_its_claimed_recipient_back(tmp_path: Path) -> None:
    """The claim committed while ``prepare`` failed (nothing left): the recipient is released, not in doubt."""

    class BrokenPrepare(OverlappingMemoryChannel):
        def prepare(self, connection: Any, recipient: Any) -> None:
            super().prepare(connection, recipient)
            if len(self.delivered) == 12:
                raise ConnectionResetError("relay went away before DATA")

    delivered: list[str] = []
    with pytest.raises(ConnectionResetError):
        run(tmp_path, 30, adapter=BrokenPrepare(tmp_path, delivered, None, set()))
    with local_ledger(tmp_path) as ledger:
        assert ledger.in_doubt() == [] and len(ledger.already_reached([r.id for r in plan(30).recipients()])) == 12
    result, _ = run(tmp_path, 30, run_id="run-2", adapter=OverlappingMemoryChannel(tmp_path, delivered, None, set()))
    assert (result.already_reached, result.in_doubt, result.sent) == (12, 0, 18)
    assert len(delivered) == len(set(delivered)) == 30


@pytest.mark.parametrize("crash_at", range(1, 53, 3))
def test_crash_then_resend_in_doubt_sends_each_of_them_exactly_once_more(tmp_path: Path, crash_at: int) -> None:
    """Killed at any point, then restarted with resend: the run in doubt gets one message, nobody else a second."""
    size = 25
    everyone = [r.id for r in plan(size).recipients()]
    first: list[str] = []
    steps = Steps(crash_at)
    with pytest.raises(Crash):
        run(tmp_path, size, adapter=MemoryChannel(tmp_path, first, steps, set()), ledger_class=crashing_ledger(steps))
    with local_ledger(tmp_path) as ledger:
        in_doubt = set(ledger.in_doubt())

    second: list[str] = []
    result, published = run(
        tmp_path, size, run_id="run-2", adapter=MemoryChannel(tmp_path, second, None, set()), resend=True
    )
    assert len(second) == len(set(second)), "the restart sent someone twice"
    assert in_doubt <= set(second), "every recipient in doubt gets one more message"
    assert not set(first) & set(second) - in_doubt, "only recipients in doubt may hear twice"
    assert set(first) | set(second) == set(everyone)
    assert (result.in_doubt, result.total, result.sent) == (0, size - len(set(first) - in_doubt), len(second))
    assert published[0]["in_doubt"] == 0
    with local_ledger(tmp_path) as ledger:
        assert (ledger.counts(size).sent, ledger.in_doubt()) == (size, [])


def test_without_resend_a_restart_leaves_the_doubtful_alone(tmp_path: Path) -> None:
    """The default: a recipient in doubt is reported, not resent, and stays pending."""
    with local_ledger(tmp_path) as ledger:
        ledger.claim(next(plan(1).recipients()), "crashed")
    sent: list[str] = []
    result, published = run(tmp_path, 10, adapter=MemoryChannel(tmp_path, sent, None, set()))
    assert (result.in_doubt, result.total, len(sent)) == (1, 9, 9)
    assert published[-1]["in_doubt"] == 1
    with local_ledger(tmp_path) as ledger:
        assert len(ledger.in_doubt()) == 1


def test_a_rate_limit_wait_starts_with_the_last_message_confirmed(tmp_path: Path) -> None:
    """Killed while waiting for its rate limit, a task leaves nobody in doubt: it confirmed before waiting."""
    sent: list[str] = []

    def state() -> str:
        if len(sent) >= 5:
            raise Crash
        return "running"

    channel = MemoryChannel(tmp_path, sent, None, set())
    channel.pacer = Pacer(500)
    with pytest.raises(Crash):
        run(tmp_path, 10, state=state, adapter=channel)
    with local_ledger(tmp_path) as ledger:
        assert (ledger.counts(10).sent, ledger.in_doubt()) == (5, [])


def test_resend_race_lost_leaves_the_recipient_to_the_winner(tmp_path: Path) -> None:
    """Two restarts resending at once: the one whose re-claim loses skips the recipient and leaves it out of total."""
    recipients = list(plan(10).recipients())
    with local_ledger(tmp_path) as ledger:
        ledger.record(recipients[:4], "crashed")
        ledger.claim(recipients[4], "crashed")

    class RacedLedger(SqliteLedger):
        def doubtful(self, run_id: str, audience_size: int) -> list[tuple[int, str]]:
            found = super().doubtful(run_id, audience_size)
            with local_ledger(tmp_path) as winner:  # the other restart re-claims right after this one looked
                assert winner.reclaim(recipients[4], "run-3", claimed_by="crashed")
            return found

    sent: list[str] = []
    result, published = run(
        tmp_path,
        10,
        run_id="run-2",
        adapter=MemoryChannel(tmp_path, sent, None, set()),
        ledger_class=RacedLedger,
        resend=True,
    )
    assert sent == [r.id for r in recipients[5:]], "run-2 did not send the recipient run-3 re-claimed"
    assert (result.total, result.sent, result.in_doubt) == (5, 5, 0)
    assert published[-1]["sent"] + published[-1]["failed"] == published[-1]["total"]
